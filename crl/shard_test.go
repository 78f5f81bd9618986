package crl

import (
	"crypto/x509"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"anchor/fsm"
)

// serialInShard returns a random serial of the given default shard.
func serialInShard(shard int) *big.Int {
	for {
		if s := randomSerial(); ShardOf(s, fsm.DefaultCRLShards) == shard {
			return s
		}
	}
}

// fetchURL downloads a CRL and writes it as PEM under name. It returns the
// path.
func (p *testPKI) fetchURL(url, name string) string {
	p.t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("GET %s: status %d: %s", url, resp.StatusCode, der)
	}
	if err := os.WriteFile(filepath.Join(p.dir, name+".der"), der, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return p.writePEM(name+".pem", "X509 CRL", der)
}

// verifyLeaf runs openssl verify on a leaf with the root as trust anchor,
// the SubCA as intermediate and extra flags and CRL files.
func (p *testPKI) verifyLeaf(leafPEM string, args ...string) (string, error) {
	p.t.Helper()
	root := p.writePEM("root.pem", "CERTIFICATE", p.rootCert.Raw)
	sub := p.writePEM("sub.pem", "CERTIFICATE", p.subCert.Raw)
	base := []string{"verify", "-CAfile", root, "-untrusted", sub}
	return openssl(p.t, append(append(base, args...), leafPEM)...)
}

func requireVerified(t *testing.T, what, out string, err error) {
	t.Helper()
	if err != nil || !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify of %s: got %v, want OK\n%s", what, err, out)
	}
}

func requireRevoked(t *testing.T, what, out string, err error) {
	t.Helper()
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify of %s: got %v, want certificate revoked\n%s", what, err, out)
	}
}

func TestPublisher_ShardCRLVerifiesLeaves(t *testing.T) {
	p := newTestPKI(t)
	good := p.issueShardedLeaf("good.example.net", serialInShard(3))
	revoked := p.issueShardedLeaf("revoked.example.net", serialInShard(3))
	elsewhere := p.issueShardedLeaf("elsewhere.example.net", serialInShard(5))
	p.revoke(revoked, 1)
	p.revoke(elsewhere, 1)
	p.startPublisher(PublisherOptions{})
	crl := p.waitScope(fsm.ShardScope(subID, 3), false, "lists the revoked leaf",
		func(c *fsm.CRL) bool { return hasSerial(c, revoked) })
	if hasSerial(crl, elsewhere) {
		t.Errorf("shard 3 lists a leaf of shard 5")
	}

	shardCRL := p.fetchURL(ShardURL(p.server.URL, subID, 3), "shard3")
	chain := p.writePEM("chain.pem", "CERTIFICATE", p.rootCert.Raw, p.subCert.Raw)
	out, err := openssl(t, "crl", "-in", shardCRL, "-CAfile", chain, "-noout", "-verify")
	if err != nil || !strings.Contains(out, "verify OK") {
		t.Errorf("openssl crl -verify of the shard CRL: %v\n%s", err, out)
	}
	out, err = p.verifyLeaf(p.writePEM("good.pem", "CERTIFICATE", good.Raw),
		"-crl_check", "-CRLfile", shardCRL)
	requireVerified(t, "the good leaf", out, err)
	out, err = p.verifyLeaf(p.writePEM("revoked.pem", "CERTIFICATE", revoked.Raw),
		"-crl_check", "-CRLfile", shardCRL)
	requireRevoked(t, "the revoked leaf", out, err)

	// The SubCA's full CRL covers every leaf, whichever shard its CRL
	// distribution point names.
	p.waitCRL(subID, "lists both revoked leaves", func(c *fsm.CRL) bool {
		return hasSerial(c, revoked) && hasSerial(c, elsewhere)
	})
	fullCRL := p.fetchCRL(subID)
	out, err = p.verifyLeaf(p.writePEM("good.pem", "CERTIFICATE", good.Raw),
		"-crl_check", "-CRLfile", fullCRL)
	requireVerified(t, "the good leaf against the full CRL", out, err)
	out, err = p.verifyLeaf(p.writePEM("elsewhere.pem", "CERTIFICATE", elsewhere.Raw),
		"-crl_check", "-CRLfile", fullCRL)
	requireRevoked(t, "a revoked leaf of shard 5 against the full CRL", out, err)

	out, err = openssl(t, "crl", "-in", shardCRL, "-noout", "-text")
	if err != nil {
		t.Fatalf("openssl crl -text: %v\n%s", err, out)
	}
	for _, want := range []string{
		"URI:" + ShardURL(p.server.URL, subID, 3),
		"Freshest CRL",
		"URI:" + DeltaURLs([]string{ShardURL(p.server.URL, subID, 3)})[0],
	} {
		if !strings.Contains(out, want) {
			t.Errorf("shard CRL lacks %q\n%s", want, out)
		}
	}
}

func TestPublisher_RebuildsOnlyChangedShard(t *testing.T) {
	p := newTestPKI(t)
	p.startPublisher(PublisherOptions{Debounce: 50 * time.Millisecond})
	before := map[int][2]uint64{} // shard → complete and delta numbers
	for shard := range fsm.DefaultCRLShards {
		scope := fsm.ShardScope(subID, shard)
		complete := p.waitScope(scope, false, "exists", func(*fsm.CRL) bool { return true })
		delta := p.waitScope(scope, true, "follows the complete CRL", func(c *fsm.CRL) bool {
			return c.Number > complete.Number
		})
		before[shard] = [2]uint64{complete.Number, delta.Number}
	}

	leaf := p.issueShardedLeaf("leaf.example.net", serialInShard(3))
	p.revoke(leaf, 1)
	p.waitScope(fsm.ShardScope(subID, 3), true, "lists the leaf",
		func(c *fsm.CRL) bool { return hasSerial(c, leaf) })
	complete := p.storedScope(fsm.ShardScope(subID, 3), false)
	if !hasSerial(complete, leaf) || complete.Number <= before[3][0] {
		t.Errorf("shard 3: complete CRL %d (was %d) does not list the leaf",
			complete.Number, before[3][0])
	}
	for shard := range fsm.DefaultCRLShards {
		if shard == 3 {
			continue
		}
		scope := fsm.ShardScope(subID, shard)
		got := [2]uint64{p.storedScope(scope, false).Number, p.storedScope(scope, true).Number}
		if got != before[shard] {
			t.Errorf("shard %d was signed again: numbers %v, were %v", shard, got, before[shard])
		}
	}
}

// TestPublisher_DeltaCRLUpdatesOldBase checks that OpenSSL combines an old
// base with the delta. With -extended_crl, OpenSSL 3.0 does not take the
// newer delta CRL for a complete one. So an earlier revocation must come
// from the base and a later one from the delta.
func TestPublisher_DeltaCRLUpdatesOldBase(t *testing.T) {
	p := newTestPKI(t)
	early := p.issueShardedLeaf("early.example.net", serialInShard(3))
	late := p.issueShardedLeaf("late.example.net", serialInShard(3))
	p.revoke(early, 1)
	p.startPublisher(PublisherOptions{Debounce: 50 * time.Millisecond})
	scope := fsm.ShardScope(subID, 3)
	base := p.waitScope(scope, false, "exists", func(*fsm.CRL) bool { return true })
	p.waitScope(scope, true, "follows the base", func(c *fsm.CRL) bool {
		return c.Number > base.Number
	})
	basePEM := p.fetchURL(ShardURL(p.server.URL, subID, 3), "base")

	p.revoke(late, 1)
	delta := p.waitScope(scope, true, "lists the later revocation", func(c *fsm.CRL) bool {
		return hasSerial(c, late)
	})
	if delta.Base == nil || delta.Base.Number != base.Number {
		t.Errorf("delta CRL %d has base %+v, want the unchanged base %d", delta.Number,
			delta.Base, base.Number)
	}
	if delta.Entries != 1 || hasSerial(delta, early) {
		t.Errorf("delta CRL lists %d entries, want only the later revocation", delta.Entries)
	}
	deltaPEM := p.fetchURL(DeltaURLs([]string{ShardURL(p.server.URL, subID, 3)})[0], "delta")

	chain := p.writePEM("chain.pem", "CERTIFICATE", p.rootCert.Raw, p.subCert.Raw)
	out, err := openssl(t, "crl", "-in", deltaPEM, "-CAfile", chain, "-noout", "-verify", "-text")
	if err != nil || !strings.Contains(out, "verify OK") {
		t.Errorf("openssl crl -verify of the delta CRL: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Delta CRL Indicator: critical") ||
		!strings.Contains(out, strconv.FormatUint(base.Number, 10)) {
		t.Errorf("delta CRL lacks a critical indicator naming base %d\n%s", base.Number, out)
	}

	latePEM := p.writePEM("late.pem", "CERTIFICATE", late.Raw)
	earlyPEM := p.writePEM("early.pem", "CERTIFICATE", early.Raw)
	out, err = p.verifyLeaf(latePEM, "-crl_check", "-CRLfile", basePEM)
	requireVerified(t, "the later leaf against the old base alone", out, err)
	withDelta := []string{"-crl_check", "-extended_crl", "-use_deltas",
		"-CRLfile", basePEM, "-CRLfile", deltaPEM}
	out, err = p.verifyLeaf(latePEM, withDelta...)
	requireRevoked(t, "the later leaf against the old base and the delta", out, err)
	out, err = p.verifyLeaf(earlyPEM, withDelta...)
	requireRevoked(t, "the earlier leaf against the old base and the delta", out, err)
}

func TestPublisher_LargeFullCRLKeptCurrentByDelta(t *testing.T) {
	p := newTestPKI(t)
	first := p.issueLeaf("first.example.net")
	second := p.issueLeaf("second.example.net")
	p.revoke(first, 1)
	p.revoke(second, 1)
	p.startPublisher(PublisherOptions{Debounce: 50 * time.Millisecond, FullRebuildMaxEntries: 1})
	complete := p.waitCRL(subID, "lists both leaves", func(c *fsm.CRL) bool {
		return hasSerial(c, first) && hasSerial(c, second)
	})
	p.waitScope(fsm.FullScope(subID), true, "follows the complete CRL",
		func(c *fsm.CRL) bool { return c.Number > complete.Number })

	third := p.issueLeaf("third.example.net")
	p.revoke(third, 1)
	p.waitScope(fsm.FullScope(subID), true, "lists the third leaf",
		func(c *fsm.CRL) bool { return hasSerial(c, third) })
	if now := p.storedCRL(subID); now.Number != complete.Number {
		t.Errorf("full CRL of %d revocations was signed again (%d → %d) above the limit of 1",
			3, complete.Number, now.Number)
	}

	fullPEM := p.fetchURL(URL(p.server.URL, subID), "full")
	deltaPEM := p.fetchURL(DeltaURLs([]string{URL(p.server.URL, subID)})[0], "full-delta")
	withDelta := []string{"-crl_check", "-extended_crl", "-use_deltas",
		"-CRLfile", fullPEM, "-CRLfile", deltaPEM}
	out, err := p.verifyLeaf(p.writePEM("third.pem", "CERTIFICATE", third.Raw), withDelta...)
	requireRevoked(t, "the third leaf against the full CRL and its delta", out, err)
	out, err = p.verifyLeaf(p.writePEM("first.pem", "CERTIFICATE", first.Raw), withDelta...)
	requireRevoked(t, "the first leaf against the full CRL and its delta", out, err)
}

func TestRevokeSubCA_RootCRLListsSubCA(t *testing.T) {
	p := newTestPKI(t)
	leaf := p.issueLeaf("leaf.example.net")
	if err := RevokeSubCA(t.Context(), p, subID, 2); err != nil {
		t.Fatalf("RevokeSubCA: %v", err)
	}
	p.startPublisher(PublisherOptions{})
	crl := p.waitCRL(rootID, "lists the SubCA", func(c *fsm.CRL) bool {
		return hasSerial(c, p.subCert)
	})
	p.waitCRL(subID, "exists", func(*fsm.CRL) bool { return true })
	if crl.Entries != 1 {
		t.Errorf("root CRL lists %d entries, want 1", crl.Entries)
	}

	rootCRL := p.fetchCRL(rootID)
	subCRL := p.fetchCRL(subID)
	out, err := openssl(t, "crl", "-in", rootCRL, "-noout", "-text")
	if err != nil || !strings.Contains(out, "CA Compromise") {
		t.Errorf("root CRL does not show reason CA Compromise: %v\n%s", err, out)
	}
	out, err = p.verifyLeaf(p.writePEM("leaf.pem", "CERTIFICATE", leaf.Raw),
		"-crl_check_all", "-CRLfile", rootCRL, "-CRLfile", subCRL)
	requireRevoked(t, "a leaf of the revoked SubCA", out, err)
}

func TestConfigureShards_RejectedAfterIssuance(t *testing.T) {
	p := newTestPKI(t)
	if err := ConfigureShards(t.Context(), p, subID, 64); err != nil {
		t.Fatalf("ConfigureShards before issuance: %v", err)
	}
	p.issueLeafWith("leaf.example.net", randomSerial(), func(*x509.Certificate) {})
	err := ConfigureShards(t.Context(), p, subID, 32)
	if fsm.CodeOf(err) != fsm.CodeFailedPrecondition {
		t.Errorf("ConfigureShards after issuance: got %v, want failed_precondition", err)
	}
}
