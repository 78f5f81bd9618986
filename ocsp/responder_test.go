package ocsp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
)

func TestResponder_Good(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("good.example.net", randomSerial())
	out, err := p.opensslOCSP("-issuer", p.subPEM, "-cert", leaf, "-url", p.ocspURL(), "-no_nonce")
	requireOutput(t, out, err, "Response verify OK", leaf+": good", "This Update:", "Next Update:")
}

func TestResponder_RevokedWithReason(t *testing.T) {
	p := newTestPKI(t)
	cert, leaf := p.issueLeaf("revoked.example.net", randomSerial())
	p.revoke(cert, 1) // keyCompromise
	out, err := p.opensslOCSP("-issuer", p.subPEM, "-cert", leaf, "-url", p.ocspURL(), "-no_nonce")
	requireOutput(t, out, err, "Response verify OK", leaf+": revoked", "Reason: keyCompromise",
		"Revocation Time:")
}

func TestResponder_RevokedUnspecifiedOmitsReason(t *testing.T) {
	p := newTestPKI(t)
	cert, leaf := p.issueLeaf("unspecified.example.net", randomSerial())
	p.revoke(cert, 0)
	out, err := p.opensslOCSP("-issuer", p.subPEM, "-cert", leaf, "-url", p.ocspURL(), "-no_nonce")
	requireOutput(t, out, err, "Response verify OK", leaf+": revoked")
	if strings.Contains(out, "Reason:") {
		t.Errorf("response to a revocation with reason unspecified states a reason:\n%s", out)
	}
}

func TestResponder_UnknownSerial(t *testing.T) {
	p := newTestPKI(t)
	out, err := p.opensslOCSP("-issuer", p.subPEM, "-serial", "0x123456789abcdef",
		"-url", p.ocspURL(), "-no_nonce")
	requireOutput(t, out, err, "Response verify OK", "0x123456789abcdef: unknown")
}

func TestResponder_SerialOfAnotherCA(t *testing.T) {
	p := newTestPKI(t)
	cert, _ := p.issueLeaf("leaf.example.net", randomSerial())
	serial := "0x" + cert.SerialNumber.Text(16)
	out, err := p.opensslOCSP("-issuer", p.rootPEM, "-serial", serial, "-url", p.ocspURL(),
		"-no_nonce")
	requireOutput(t, out, err, "Response verify OK", serial+": unknown")
}

func TestResponder_SubCAOfRootIsGood(t *testing.T) {
	p := newTestPKI(t)
	out, err := p.opensslOCSP("-issuer", p.rootPEM, "-cert", p.subPEM, "-url", p.ocspURL(),
		"-no_nonce")
	requireOutput(t, out, err, "Response verify OK", p.subPEM+": good")
}

func TestResponder_UnknownIssuerUnauthorized(t *testing.T) {
	p := newTestPKI(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Foreign CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	foreign := p.writePEM("foreign.pem", signCert(t, tmpl, tmpl, key.Public(), key))
	out, err := p.opensslOCSP("-issuer", foreign, "-serial", "0x42", "-url", p.ocspURL(), "-no_nonce")
	requireResponderError(t, out, err, "unauthorized (6)")
}

func TestResponder_SHA256CertID(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("sha256.example.net", randomSerial())
	respPath := filepath.Join(p.dir, "resp.der")
	out, err := p.opensslOCSP("-issuer", p.subPEM, "-sha256", "-cert", leaf, "-url", p.ocspURL(),
		"-no_nonce", "-respout", respPath)
	requireOutput(t, out, err, "Response verify OK", leaf+": good")

	resp := parseResponseFile(t, respPath, p.subCert)
	if resp.IssuerHash != crypto.SHA256 {
		t.Errorf("response CertID hash is %v, want SHA-256 as in the request", resp.IssuerHash)
	}
}

func TestResponder_SHA1CertID(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("sha1.example.net", randomSerial())
	respPath := filepath.Join(p.dir, "resp.der")
	out, err := p.opensslOCSP("-issuer", p.subPEM, "-cert", leaf, "-url", p.ocspURL(),
		"-no_nonce", "-respout", respPath)
	requireOutput(t, out, err, "Response verify OK", leaf+": good")

	resp := parseResponseFile(t, respPath, p.subCert)
	if resp.IssuerHash != crypto.SHA1 {
		t.Errorf("response CertID hash is %v, want SHA-1 as in the request", resp.IssuerHash)
	}
}

func TestResponder_NonceEchoed(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("nonce.example.net", randomSerial())
	// openssl ocsp sends a 16-octet nonce by default and warns when the
	// response lacks it or differs.
	out, err := p.opensslOCSP("-issuer", p.subPEM, "-cert", leaf, "-url", p.ocspURL())
	requireOutput(t, out, err, "Response verify OK", leaf+": good")
	if strings.Contains(out, "WARNING") || strings.Contains(out, "nonce verify error") {
		t.Errorf("openssl reports a nonce problem:\n%s", out)
	}
}

func TestResponder_MultipleCertsMalformed(t *testing.T) {
	p := newTestPKI(t)
	_, first := p.issueLeaf("first.example.net", randomSerial())
	_, second := p.issueLeaf("second.example.net", randomSerial())
	out, err := p.opensslOCSP("-issuer", p.subPEM, "-cert", first, "-cert", second,
		"-url", p.ocspURL(), "-no_nonce")
	requireResponderError(t, out, err, "malformedrequest (1)")
}

func TestResponder_MalformedBody(t *testing.T) {
	p := newTestPKI(t)
	resp, err := http.Post(p.ocspURL(), "application/ocsp-request", strings.NewReader("not DER"))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200 with an OCSP error", resp.StatusCode)
	}
	respPath := filepath.Join(p.dir, "resp.der")
	if err := os.WriteFile(respPath, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := p.opensslOCSP("-respin", respPath, "-resp_text", "-noverify")
	requireResponderError(t, out, err, "malformedrequest (1)")
}

func TestResponder_OversizedBodyMalformed(t *testing.T) {
	p := newTestPKI(t)
	body := bytes.Repeat([]byte{0x30}, DefaultMaxRequestBytes+1)
	resp, err := http.Post(p.ocspURL(), "application/ocsp-request", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); !bytes.Equal(got, xocsp.MalformedRequestErrorResponse) {
		t.Errorf("response %x, want malformedRequest", got)
	}
}

func TestResponder_KeyMissingTryLater(t *testing.T) {
	p := newTestPKIWith(t, failingSigners{}, Options{})
	_, leaf := p.issueLeaf("leaf.example.net", randomSerial())
	out, err := p.opensslOCSP("-issuer", p.subPEM, "-cert", leaf, "-url", p.ocspURL(), "-no_nonce")
	requireResponderError(t, out, err, "trylater (3)")
}

// TestResponder_KeyMissingWarnsOnce sends requests for several serials of
// a CA whose key this node lacks. Each gets tryLater, and the log has one
// warning, not one a request.
func TestResponder_KeyMissingWarnsOnce(t *testing.T) {
	p := newTestPKIWith(t, failingSigners{}, Options{})
	var logs bytes.Buffer
	p.responder.logger = slog.New(slog.NewJSONHandler(&logs, nil))
	for range 5 {
		cert, _ := p.issueLeaf("leaf.example.net", randomSerial())
		der, err := xocsp.CreateRequest(cert, p.subCert, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(p.ocspURL(), "application/ocsp-request", bytes.NewReader(der))
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, resp); !bytes.Equal(got, xocsp.TryLaterErrorResponse) {
			t.Fatalf("response %x, want tryLater", got)
		}
	}
	if n := strings.Count(logs.String(), "ocsp signing key unavailable"); n != 1 {
		t.Errorf("%d warnings for 5 requests, want 1:\n%s", n, logs.String())
	}
}

// TestResponder_TryLaterUntilReady checks that the responder sends tryLater
// and pre-signs nothing while Options.Ready reports false, then sends good.
func TestResponder_TryLaterUntilReady(t *testing.T) {
	var ready atomic.Bool
	p := newTestPKIWith(t, nil, Options{Ready: ready.Load})
	cert, _ := p.issueLeaf("ready.example.net", randomSerial())
	der, err := xocsp.CreateRequest(cert, p.subCert, nil)
	if err != nil {
		t.Fatal(err)
	}
	post := func() []byte {
		resp, err := http.Post(p.ocspURL(), "application/ocsp-request", bytes.NewReader(der))
		if err != nil {
			t.Fatal(err)
		}
		return readAll(t, resp)
	}

	if got := post(); !bytes.Equal(got, xocsp.TryLaterErrorResponse) {
		t.Fatalf("before ready: response %x, want tryLater", got)
	}
	position := ""
	if n := p.responder.presignRound(&position); n != 0 {
		t.Errorf("before ready: %d responses pre-signed, want 0", n)
	}

	ready.Store(true)
	position = ""
	if n := p.responder.presignRound(&position); n == 0 {
		t.Error("after ready: nothing pre-signed")
	}
	resp, err := xocsp.ParseResponseForCert(post(), cert, p.subCert)
	if err != nil {
		t.Fatalf("after ready: %v", err)
	}
	if resp.Status != xocsp.Good {
		t.Errorf("after ready: status %d, want good", resp.Status)
	}
}

func TestResponder_PutNotAllowed(t *testing.T) {
	p := newTestPKI(t)
	req, _ := http.NewRequest(http.MethodPut, p.ocspURL(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: status %d, want 405", resp.StatusCode)
	}
}

func TestResponder_OtherPathsReachMux(t *testing.T) {
	p := newTestPKI(t)
	for _, path := range []string{"/ocspx", "/crl/x.crl", "/"} {
		resp, err := http.Get(p.server.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot {
			t.Errorf("GET %s: status %d, want the mux's 418", path, resp.StatusCode)
		}
	}
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func parseResponseFile(t *testing.T, path string, issuer *x509.Certificate) *xocsp.Response {
	t.Helper()
	der, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := xocsp.ParseResponse(der, issuer)
	if err != nil {
		t.Fatalf("parse response: %v", err)
	}
	return resp
}
