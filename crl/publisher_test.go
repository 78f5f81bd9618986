package crl

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"anchor/fsm"
)

// fetchCRL downloads a CA's CRL from the test server and writes it as DER
// and PEM. It returns the PEM path.
func (p *testPKI) fetchCRL(caID string) string {
	p.t.Helper()
	resp, err := http.Get(URL(p.server.URL, caID))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("GET CRL of %s: status %d: %s", caID, resp.StatusCode, der)
	}
	name := strings.ReplaceAll(caID, "/", "_")
	if err := os.WriteFile(filepath.Join(p.dir, name+".der"), der, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return p.writePEM(name+".pem", "X509 CRL", der)
}

func hasSerial(crl *fsm.CRL, cert *x509.Certificate) bool {
	rl, err := x509.ParseRevocationList(crl.DER)
	if err != nil {
		return false
	}
	for _, e := range rl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return true
		}
	}
	return false
}

func TestPublisher_OpenSSLVerifiesChain(t *testing.T) {
	p := newTestPKI(t)
	good := p.issueLeaf("good.example.net")
	revoked := p.issueLeaf("revoked.example.net")
	p.revoke(revoked, 1) // keyCompromise
	p.startPublisher(PublisherOptions{})
	p.waitCRL(subID, "lists the revoked leaf", func(c *fsm.CRL) bool { return hasSerial(c, revoked) })
	p.waitCRL(rootID, "exists", func(*fsm.CRL) bool { return true })

	root := p.writePEM("root.pem", "CERTIFICATE", p.rootCert.Raw)
	sub := p.writePEM("sub.pem", "CERTIFICATE", p.subCert.Raw)
	chain := p.writePEM("chain.pem", "CERTIFICATE", p.rootCert.Raw, p.subCert.Raw)
	subCRL := p.fetchCRL(subID)
	rootCRL := p.fetchCRL(rootID)

	out, err := openssl(t, "crl", "-in", subCRL, "-CAfile", chain, "-noout", "-verify")
	if err != nil || !strings.Contains(out, "verify OK") {
		t.Errorf("openssl crl -verify of the SubCA CRL: %v\n%s", err, out)
	}
	out, err = openssl(t, "crl", "-in", rootCRL, "-CAfile", root, "-noout", "-verify")
	if err != nil || !strings.Contains(out, "verify OK") {
		t.Errorf("openssl crl -verify of the root CRL: %v\n%s", err, out)
	}

	goodPEM := p.writePEM("good.pem", "CERTIFICATE", good.Raw)
	revokedPEM := p.writePEM("revoked.pem", "CERTIFICATE", revoked.Raw)
	verify := []string{"verify", "-crl_check_all", "-CAfile", root, "-untrusted", sub,
		"-CRLfile", subCRL, "-CRLfile", rootCRL}
	out, err = openssl(t, append(verify, goodPEM)...)
	if err != nil || !strings.Contains(out, "OK") {
		t.Errorf("openssl verify -crl_check_all of the good leaf: %v\n%s", err, out)
	}
	out, err = openssl(t, append(verify, revokedPEM)...)
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify of the revoked leaf: got %v, want certificate revoked\n%s", err, out)
	}
}

func TestPublisher_ReasonCodes(t *testing.T) {
	p := newTestPKI(t)
	unspecified := p.issueLeaf("unspecified.example.net")
	superseded := p.issueLeaf("superseded.example.net")
	p.revoke(unspecified, 0)
	p.revoke(superseded, 4)
	p.startPublisher(PublisherOptions{})
	crl := p.waitCRL(subID, "lists both leaves", func(c *fsm.CRL) bool {
		return hasSerial(c, unspecified) && hasSerial(c, superseded)
	})

	rl, err := x509.ParseRevocationList(crl.DER)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rl.RevokedCertificateEntries {
		switch e.SerialNumber.Cmp(unspecified.SerialNumber) {
		case 0:
			if len(e.Extensions) != 0 {
				t.Errorf("entry with reason unspecified has extensions %v, want none", e.Extensions)
			}
		default:
			if e.ReasonCode != 4 {
				t.Errorf("superseded entry has reason %d, want 4", e.ReasonCode)
			}
		}
	}
	out, err := openssl(t, "crl", "-in", p.fetchCRL(subID), "-noout", "-text")
	if err != nil {
		t.Fatalf("openssl crl -text: %v\n%s", err, out)
	}
	if n := strings.Count(out, "CRL Reason Code"); n != 1 {
		t.Errorf("openssl shows %d reason codes, want 1\n%s", n, out)
	}
	if !strings.Contains(out, "Superseded") {
		t.Errorf("openssl does not show reason Superseded\n%s", out)
	}
}

func TestPublisher_IssuingDistributionPoint(t *testing.T) {
	p := newTestPKI(t)
	p.startPublisher(PublisherOptions{})
	p.waitCRL(subID, "exists", func(*fsm.CRL) bool { return true })
	p.waitCRL(rootID, "exists", func(*fsm.CRL) bool { return true })

	cases := []struct {
		caID, scope string
	}{
		{subID, "Only User Certificates"},
		{rootID, "Only CA Certificates"},
	}
	for _, c := range cases {
		out, err := openssl(t, "crl", "-in", p.fetchCRL(c.caID), "-noout", "-text")
		if err != nil {
			t.Fatalf("openssl crl -text: %v\n%s", err, out)
		}
		if !strings.Contains(out, "Issuing Distribution Point: critical") {
			t.Errorf("CRL of %s: no critical issuing distribution point\n%s", c.caID, out)
		}
		// Full CRLs name no distribution point; shard CRLs do
		// (TestPublisher_ShardCRLVerifiesLeaves).
		if strings.Contains(out, "URI:"+URL(p.server.URL, c.caID)) {
			t.Errorf("full CRL of %s names distribution point %s\n%s",
				c.caID, URL(p.server.URL, c.caID), out)
		}
		if !strings.Contains(out, c.scope) {
			t.Errorf("CRL of %s: missing %q\n%s", c.caID, c.scope, out)
		}
		if !strings.Contains(out, "Authority Key Identifier") {
			t.Errorf("CRL of %s: no authority key identifier\n%s", c.caID, out)
		}
	}
}

func TestPublisher_NumberRisesOnRevocation(t *testing.T) {
	p := newTestPKI(t)
	leaf := p.issueLeaf("leaf.example.net")
	p.startPublisher(PublisherOptions{Debounce: 50 * time.Millisecond})
	first := p.waitCRL(subID, "exists", func(*fsm.CRL) bool { return true })

	p.revoke(leaf, 1)
	second := p.waitCRL(subID, "lists the leaf", func(c *fsm.CRL) bool { return hasSerial(c, leaf) })
	if second.Number <= first.Number {
		t.Errorf("CRL number %d after revocation is not greater than %d", second.Number, first.Number)
	}
	rl, err := x509.ParseRevocationList(second.DER)
	if err != nil {
		t.Fatal(err)
	}
	if rl.Number.Uint64() != second.Number {
		t.Errorf("cRLNumber %v differs from the record number %d", rl.Number, second.Number)
	}
}

// A revoked certificate that expires stays on the next complete CRL signed
// after its expiry and is dropped from the one after that. A revoked
// certificate that has not expired stays.
func TestPublisher_DropsExpiredAfterOneMoreCRL(t *testing.T) {
	p := newTestPKI(t)
	notAfter := time.Now().Add(2 * time.Second).Truncate(time.Second)
	expiring := p.issueLeafWith("expiring.example.net", randomSerial(), func(c *x509.Certificate) {
		c.NotAfter = notAfter
	})
	lasting := p.issueLeaf("lasting.example.net")
	p.revoke(expiring, 1)
	p.revoke(lasting, 1)

	p.startPublisher(PublisherOptions{
		Validity: 4 * time.Second, RefreshBefore: 3 * time.Second, Interval: 100 * time.Millisecond,
	})
	afterExpiry := p.waitCRL(subID, "is signed after the expiry", func(c *fsm.CRL) bool {
		return c.ThisUpdate.After(notAfter)
	})
	if !hasSerial(afterExpiry, expiring) {
		t.Fatalf("CRL %d, the first signed after the expiry, does not list the expired certificate",
			afterExpiry.Number)
	}

	dropped := p.waitCRL(subID, "drops the expired certificate", func(c *fsm.CRL) bool {
		return !hasSerial(c, expiring)
	})
	if dropped.Number <= afterExpiry.Number {
		t.Errorf("CRL %d dropped the entry, not after CRL %d", dropped.Number, afterExpiry.Number)
	}
	if !hasSerial(dropped, lasting) {
		t.Errorf("CRL %d dropped the revoked certificate that has not expired", dropped.Number)
	}
	if dropped.Entries != 1 {
		t.Errorf("CRL %d has %d entries, want 1", dropped.Number, dropped.Entries)
	}
}

func TestPublisher_RefreshesBeforeNextUpdate(t *testing.T) {
	p := newTestPKI(t)
	p.startPublisher(PublisherOptions{
		Validity: 4 * time.Second, RefreshBefore: 3 * time.Second, Interval: 100 * time.Millisecond,
	})
	first := p.waitCRL(subID, "exists", func(*fsm.CRL) bool { return true })
	second := p.waitCRL(subID, "is signed again", func(c *fsm.CRL) bool {
		return c.Number > first.Number
	})
	if !second.NextUpdate.After(first.NextUpdate) {
		t.Errorf("refreshed nextUpdate %s is not after %s", second.NextUpdate, first.NextUpdate)
	}
}

func TestPublisher_FollowerPublishesNothing(t *testing.T) {
	p := newTestPKI(t)
	follower := PublisherOptions{IsLeader: func() bool { return false }}
	pub := NewPublisher(p.st, p, p, p.logger, follower)
	pub.check(context.Background())
	if crl := p.storedCRL(subID); crl != nil {
		t.Errorf("follower published CRL %d", crl.Number)
	}
}

// racingApplier commits a competing CRL with the same number just before
// the publisher's own, as a former leader would from a state that lacks the
// latest revocations.
type racingApplier struct {
	p     *testPKI
	raced bool
}

func (a *racingApplier) Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	if cmd.Type != fsm.CmdPublishCRL {
		return a.p.Apply(ctx, cmd)
	}
	var crl fsm.CRL
	if err := jsonUnmarshal(cmd.Payload, &crl); err != nil {
		return nil, err
	}
	if crl.CRLScope == fsm.FullScope(subID) && !crl.Delta && !a.raced {
		a.raced = true
		ca := a.p.ca(crl.CAID)
		a.p.mustApply(fsm.CmdPublishCRL, a.p.completeCRL(ca, crl.Number, mustSigner(a.p, ca)))
	}
	return a.p.Apply(ctx, cmd)
}

func TestPublisher_LosesNumberRace(t *testing.T) {
	p := newTestPKI(t)
	leaf := p.issueLeaf("leaf.example.net")
	p.revoke(leaf, 1)
	race := &racingApplier{p: p}
	leader := PublisherOptions{IsLeader: func() bool { return true }}
	pub := NewPublisher(p.st, race, p, p.logger, leader)

	pub.check(context.Background())
	if !race.raced {
		t.Fatal("the publisher committed no CRL")
	}
	pub.check(context.Background())
	crl := p.storedCRL(subID)
	if crl == nil || !hasSerial(crl, leaf) {
		t.Fatalf("after losing the race the CRL does not list the revoked leaf: %+v", crl)
	}
	if crl.Number < 2 {
		t.Errorf("CRL number %d, want at least 2 after the rival took 1", crl.Number)
	}
}

func TestPublisherOptions_Validate(t *testing.T) {
	leader := func() bool { return true }
	cases := map[string]PublisherOptions{
		"no IsLeader":            {},
		"negative debounce":      {IsLeader: leader, Debounce: -time.Second},
		"negative rebuild limit": {IsLeader: leader, FullRebuildMaxEntries: -1},
		"refresh after validity": {IsLeader: leader, Validity: time.Hour, RefreshBefore: time.Hour},
	}
	for name, opts := range cases {
		if err := opts.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, opts)
		}
	}
	if err := (PublisherOptions{IsLeader: leader}).Validate(); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
}
