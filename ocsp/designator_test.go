package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	xocsp "golang.org/x/crypto/ocsp"

	"anchor/fsm"
	"anchor/hsm"
)

// The node passes its HSM as the Designator's KeyStore.
var _ KeyStore = (*hsm.HSM)(nil)

// GenerateKey implements KeyStore with the test token: the key's label is
// its ID, as Signer looks it up.
func (p *testPKI) GenerateKey(id string, alg hsm.Algorithm) (crypto.Signer, error) {
	if alg != hsm.ECDSAP256 {
		return nil, fmt.Errorf("test token generates only %s keys, not %s", hsm.ECDSAP256, alg)
	}
	return p.hsm.GenerateECDSAKeyPairWithLabel([]byte(id), []byte(id), elliptic.P256())
}

// Apply implements Applier by applying the command as the next log entry.
func (p *testPKI) Apply(_ context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	if !p.applyTime.IsZero() {
		cmd.Time = p.applyTime.UTC().Truncate(time.Second)
	}
	data, err := cmd.Encode()
	if err != nil {
		return nil, err
	}
	p.index++
	res, _ := p.st.Apply(&raft.Log{Index: p.index, Type: raft.LogCommand, Data: data}).(*fsm.Result)
	if res == nil {
		return nil, fmt.Errorf("log entry %d was not applied", p.index)
	}
	return res, nil
}

// designate runs one check of a leading Designator.
func (p *testPKI) designate(opts DesignatorOptions, now time.Time) {
	p.t.Helper()
	opts.IsLeader = func() bool { return true }
	opts.NodeID = "node1"
	d := NewDesignator(p.st, p, p, p.logger, opts)
	d.now = func() time.Time { return now }
	d.check(context.Background())
}

func (p *testPKI) responders(caID string) []fsm.OCSPResponder {
	p.t.Helper()
	var out []fsm.OCSPResponder
	err := p.st.View(func(tx *fsm.Tx) error {
		var err error
		out, err = tx.OCSPResponders(caID)
		return err
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// fetchResponse posts an openssl-made request and returns the DER response.
func (p *testPKI) fetchResponse(t *testing.T, leaf string, extra ...string) []byte {
	t.Helper()
	resp, err := http.Post(p.ocspURL(), "application/ocsp-request",
		bytes.NewReader(p.opensslRequest(leaf, extra...)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestDesignator_IssuesResponderCertificate(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	p.designate(DesignatorOptions{}, now)
	if got := p.responders(rootID); len(got) != 0 {
		t.Errorf("root got %d responder certificates, want none", len(got))
	}
	got := p.responders(subID)
	if len(got) != 1 {
		t.Fatalf("SubCA has %d responder certificates, want 1", len(got))
	}
	cert, err := got[0].Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(p.subCert); err != nil {
		t.Errorf("responder certificate not signed by the SubCA: %v", err)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}) {
		t.Errorf("extended key usage %v, want OCSPSigning only", cert.ExtKeyUsage)
	}
	if !hasExtension(cert, oidOCSPNoCheck) {
		t.Error("responder certificate lacks id-pkix-ocsp-nocheck")
	}
	if cert.IsCA {
		t.Error("responder certificate is a CA certificate")
	}
	// The SubCA of the fixture expires in 46 hours, before the default
	// validity of four days ends, so the certificate ends with the SubCA.
	if !cert.NotAfter.Equal(p.subCert.NotAfter) {
		t.Errorf("responder certificate ends at %s, want the SubCA's end %s", cert.NotAfter,
			p.subCert.NotAfter)
	}

	p.designate(DesignatorOptions{}, now)
	if n := len(p.responders(subID)); n != 1 {
		t.Errorf("second check with a fresh certificate: %d certificates, want 1", n)
	}
	p.designate(DesignatorOptions{}, now.Add(30*time.Hour))
	if n := len(p.responders(subID)); n != 1 {
		t.Errorf("check near the end of a certificate that ends with the SubCA: "+
			"%d certificates, want 1", n)
	}
}

func hasExtension(cert *x509.Certificate, oid []int) bool {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oid) {
			return true
		}
	}
	return false
}

// TestResponder_DesignatedVerifiesAgainstRoot runs openssl as the end-to-end
// test does: the root as the only trust anchor and the SubCA as issuer.
func TestResponder_DesignatedVerifiesAgainstRoot(t *testing.T) {
	p := newTestPKI(t)
	p.designate(DesignatorOptions{}, time.Now())
	designated, err := p.responders(subID)[0].Certificate()
	if err != nil {
		t.Fatal(err)
	}
	good, goodPEM := p.issueLeaf("good.example.net", randomSerial())
	revoked, revokedPEM := p.issueLeaf("revoked.example.net", randomSerial())
	p.revoke(revoked, 1)

	cases := []struct{ leaf, want string }{
		{goodPEM, goodPEM + ": good"},
		{revokedPEM, revokedPEM + ": revoked"},
	}
	for _, c := range cases {
		out, err := exec.Command("openssl", "ocsp", "-issuer", p.subPEM, "-cert", c.leaf,
			"-url", p.ocspURL(), "-CAfile", p.rootPEM).CombinedOutput()
		requireOutput(t, string(out), err, "Response verify OK", c.want)
	}
	out, err := exec.Command("openssl", "ocsp", "-issuer", p.subPEM, "-serial", "0x1234567",
		"-url", p.ocspURL(), "-CAfile", p.rootPEM).CombinedOutput()
	requireOutput(t, string(out), err, "Response verify OK", "0x1234567: unknown")

	body := p.fetchResponse(t, goodPEM, "-no_nonce")
	resp, err := xocsp.ParseResponseForCert(body, good, p.subCert)
	if err != nil {
		t.Fatalf("parse response: %v", err)
	}
	if resp.Certificate == nil || !bytes.Equal(resp.Certificate.Raw, designated.Raw) {
		t.Error("response does not carry the designated responder certificate")
	}
	if err := resp.CheckSignatureFrom(designated); err != nil {
		t.Errorf("response not signed by the designated responder key: %v", err)
	}
}

func TestResponder_DesignatedEchoesNonce(t *testing.T) {
	p := newTestPKI(t)
	p.designate(DesignatorOptions{}, time.Now())
	_, leaf := p.issueLeaf("nonce.example.net", randomSerial())
	out, err := exec.Command("openssl", "ocsp", "-issuer", p.subPEM, "-cert", leaf,
		"-url", p.ocspURL(), "-CAfile", p.rootPEM, "-nonce").CombinedOutput()
	requireOutput(t, string(out), err, "Response verify OK", leaf+": good")
	if strings.Contains(string(out), "WARNING") {
		t.Errorf("openssl warns about the nonce:\n%s", out)
	}
}

// TestResponder_DesignatedGETEncodings sends every GET spelling to a
// responder that signs with its designated key, and verifies each response
// with the root as the only trust anchor.
func TestResponder_DesignatedGETEncodings(t *testing.T) {
	p := newTestPKI(t)
	p.designate(DesignatorOptions{}, time.Now())
	_, leaf := p.issueLeaf("get.example.net", p.awkwardSerial())
	der := p.opensslRequest(leaf, "-no_nonce")
	b64 := base64.StdEncoding.EncodeToString(der)
	targets := map[string]string{
		"percent-encoded":             "/ocsp/" + percentEncoder.Replace(b64),
		"lower-case percent-encoding": "/ocsp/" + lowerPercentEncoder.Replace(b64),
		"raw":                         "/ocsp/" + b64,
		"leading slashes raw":         "/ocsp///" + b64,
		"space for plus":              "/ocsp/" + strings.ReplaceAll(b64, "+", "%20"),
		"url-safe unpadded":           "/ocsp/" + base64.RawURLEncoding.EncodeToString(der),
	}
	for name, target := range targets {
		t.Run(name, func(t *testing.T) {
			resp := p.getRaw(target, nil)
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: status %d: %s", target, resp.StatusCode, body)
			}
			path := filepath.Join(p.dir, "designated-get.der")
			if err := os.WriteFile(path, body, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("openssl", "ocsp", "-respin", path, "-issuer", p.subPEM,
				"-cert", leaf, "-CAfile", p.rootPEM, "-no_nonce").CombinedOutput()
			requireOutput(t, string(out), err, "Response verify OK", leaf+": good")
		})
	}
}

// missingResponderKeys is a Signers that lacks every designated responder
// key, as a node does before key distribution reaches it.
type missingResponderKeys struct{ p *testPKI }

func (m missingResponderKeys) Signer(keyID string) (crypto.Signer, error) {
	if strings.HasPrefix(keyID, "ocsp-") {
		return nil, fmt.Errorf("key %s not found", keyID)
	}
	return m.p.Signer(keyID)
}

func TestResponder_CAKeyUntilResponderKeyArrives(t *testing.T) {
	p := newTestPKI(t)
	p.designate(DesignatorOptions{}, time.Now())
	r := NewResponder(p.st, missingResponderKeys{p}, p.logger, Options{})
	requireCASigned(t, p, r)
}

func TestResponder_SignWithCAKeyOption(t *testing.T) {
	p := newTestPKI(t)
	p.designate(DesignatorOptions{}, time.Now())
	r := NewResponder(p.st, p, p.logger, Options{SignWithCAKey: true})
	requireCASigned(t, p, r)
}

// requireCASigned checks that r signs a good response with the SubCA key
// and carries no certificate.
func requireCASigned(t *testing.T, p *testPKI, r *Responder) {
	t.Helper()
	cert, _ := p.issueLeaf("ca-signed.example.net", randomSerial())
	req, err := xocsp.CreateRequest(cert, p.subCert, nil)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := parseRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := r.respond(parsed)
	if err != nil {
		t.Fatalf("respond: %v", err)
	}
	resp, err := xocsp.ParseResponseForCert(signed.der, cert, p.subCert)
	if err != nil {
		t.Fatalf("parse response: %v", err)
	}
	if resp.Certificate != nil {
		t.Errorf("response carries certificate %s, want none", resp.Certificate.Subject)
	}
	if err := resp.CheckSignatureFrom(p.subCert); err != nil {
		t.Errorf("response not signed by the SubCA key: %v", err)
	}
}

func TestDesignator_RotatesBeforeExpiry(t *testing.T) {
	p := newTestPKI(t)
	opts := DesignatorOptions{Validity: 6 * time.Hour, RenewBefore: 4 * time.Hour}
	start := time.Now()
	p.designate(opts, start)
	p.designate(opts, start.Add(time.Hour))
	if n := len(p.responders(subID)); n != 1 {
		t.Fatalf("an hour in: %d certificates, want 1", n)
	}
	p.designate(opts, start.Add(2*time.Hour+time.Minute))
	got := p.responders(subID)
	if len(got) != 2 {
		t.Fatalf("after renewal: %d certificates, want 2", len(got))
	}
	if !got[0].NotAfter.After(got[1].NotAfter) || got[0].KeyID == got[1].KeyID {
		t.Errorf("newest certificate (key %s, until %s) does not follow the older one (key %s, until %s)",
			got[0].KeyID, got[0].NotAfter, got[1].KeyID, got[1].NotAfter)
	}

	// The successor's notBefore lies two hours ahead of the real clock, so
	// the responder keeps signing with the older certificate.
	older, err := got[1].Certificate()
	if err != nil {
		t.Fatal(err)
	}
	cert, leaf := p.issueLeaf("rotation.example.net", randomSerial())
	resp, err := xocsp.ParseResponseForCert(p.fetchResponse(t, leaf, "-no_nonce"), cert, p.subCert)
	if err != nil {
		t.Fatalf("parse response: %v", err)
	}
	if resp.Certificate == nil || !bytes.Equal(resp.Certificate.Raw, older.Raw) {
		t.Error("response is not signed by the older, currently valid responder certificate")
	}
}

func TestDesignator_SkipsRevokedSubCA(t *testing.T) {
	p := newTestPKI(t)
	p.mustApply(fsm.CmdRevokeSubCA, fsm.RevokeSubCA{CAID: subID, Reason: 2})
	p.designate(DesignatorOptions{}, time.Now())
	if n := len(p.responders(subID)); n != 0 {
		t.Errorf("revoked SubCA got %d responder certificates, want none", n)
	}
}

func TestResponder_RevokedSubCAUnderRoot(t *testing.T) {
	p := newTestPKI(t)
	p.mustApply(fsm.CmdRevokeSubCA, fsm.RevokeSubCA{CAID: subID, Reason: 2})
	out, err := p.opensslOCSP("-issuer", p.rootPEM, "-cert", p.subPEM, "-url", p.ocspURL(),
		"-no_nonce")
	requireOutput(t, out, err, "Response verify OK", p.subPEM+": revoked",
		"Reason: cACompromise")
}

func TestDesignatorOptions_Validate(t *testing.T) {
	leader := func() bool { return true }
	cases := map[string]DesignatorOptions{
		"no IsLeader":    {NodeID: "n"},
		"no NodeID":      {IsLeader: leader},
		"short validity": {IsLeader: leader, NodeID: "n", Validity: time.Hour},
		"renewal after expiry": {
			IsLeader: leader, NodeID: "n", Validity: 3 * time.Hour, RenewBefore: 3 * time.Hour,
		},
		"negative renew before": {IsLeader: leader, NodeID: "n", RenewBefore: -time.Second},
	}
	for name, opts := range cases {
		if err := opts.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, opts)
		}
	}
	if err := (DesignatorOptions{IsLeader: leader, NodeID: "n"}).Validate(); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
}

// TestDesignator_RetiresDroppedResponderKeys rotates the responder three
// times on a clock the commands follow. A CA keeps its two newest
// responders, and a dropped responder's key is retired once it is
// fsm.RetireMinAge old.
func TestDesignator_RetiresDroppedResponderKeys(t *testing.T) {
	p := newTestPKI(t)
	opts := DesignatorOptions{Validity: 6 * time.Hour, RenewBefore: 4 * time.Hour}
	start := time.Now()
	var keys []string // responder keys, oldest first
	for _, at := range []time.Duration{0, 2*time.Hour + time.Minute, 4*time.Hour + 2*time.Minute, 25 * time.Hour} {
		p.applyTime = start.Add(at)
		p.designate(opts, start.Add(at))
		keys = append(keys, p.responders(subID)[0].KeyID)
	}

	var retired []string
	var active []string
	err := p.st.View(func(tx *fsm.Tx) error {
		rs, err := tx.RetiredKeys()
		if err != nil {
			return err
		}
		for _, r := range rs {
			retired = append(retired, r.ID)
		}
		ks, err := tx.Keys()
		if err != nil {
			return err
		}
		for _, k := range ks {
			active = append(active, k.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The first key was dropped at 4h02m and is 25 hours old; the second
	// was dropped at 25h but is only 22h59m old.
	if len(retired) != 1 || retired[0] != keys[0] {
		t.Errorf("retired keys %v, want only the first responder's %s", retired, keys[0])
	}
	for _, id := range keys[1:] {
		if !slices.Contains(active, id) {
			t.Errorf("responder key %s is not an active key: %v", id, active)
		}
	}
}

// TestDesignator_RetiresOnlyExpiredResponderKeys uses a responder validity
// longer than fsm.RetireMinAge. A dropped key whose certificate may still
// be valid stays until its validity and an hour have passed.
func TestDesignator_RetiresOnlyExpiredResponderKeys(t *testing.T) {
	p := newTestPKI(t)
	opts := DesignatorOptions{Validity: 30 * time.Hour, RenewBefore: 20 * time.Hour}
	start := time.Now()
	retired := func() []string {
		var ids []string
		err := p.st.View(func(tx *fsm.Tx) error {
			rs, err := tx.RetiredKeys()
			for _, r := range rs {
				ids = append(ids, r.ID)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	var first string
	for _, at := range []time.Duration{0, 10*time.Hour + time.Minute, 20*time.Hour + 2*time.Minute, 26 * time.Hour} {
		p.applyTime = start.Add(at)
		p.designate(opts, start.Add(at))
		if at == 0 {
			first = p.responders(subID)[0].KeyID
		}
	}
	if got := retired(); len(got) != 0 {
		t.Fatalf("at 26h, keys %v retired while the first certificate is valid until 30h", got)
	}
	p.applyTime = start.Add(31*time.Hour + time.Minute)
	p.designate(opts, start.Add(31*time.Hour+time.Minute))
	if got := retired(); len(got) != 1 || got[0] != first {
		t.Errorf("at 31h01m, retired keys %v, want only the first responder's %s", got, first)
	}
}
