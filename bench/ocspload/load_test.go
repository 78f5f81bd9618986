package ocspload_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"anchor/bench/ocspload"
	"anchor/bench/peers"
)

// newCA returns a software CA certificate and key and n leaves it signed.
func newCA(t *testing.T, n int) (*x509.Certificate, []*x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "load test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	var leaves []*x509.Certificate
	for i := range n {
		leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(1000 + i)),
			Subject: pkix.Name{CommonName: "leaf"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(der)
		leaves = append(leaves, leaf)
	}
	return ca, leaves
}

// TestRun_OpenSSLResponder sends every kind of request to `openssl ocsp`,
// which closes the connection after each response, and expects responses
// that pass the full check and no failures.
func TestRun_OpenSSLResponder(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	ca, leaves := newCA(t, 8)
	caFile := filepath.Join(dir, "ca.pem")
	if err := peers.WritePEM(caFile, "CERTIFICATE", ca.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	responder, err := peers.SelfSigned(dir, "responder", nil)
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	srv, err := peers.StartOpenSSLOCSP(ctx, dir, caFile, leaves, responder, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	for _, nonce := range []bool{false, true} {
		var reqs []*ocspload.Request
		for _, leaf := range leaves {
			r, err := ocspload.NewRequest(leaf, ca, nonce)
			if err != nil {
				t.Fatal(err)
			}
			reqs = append(reqs, r)
		}
		for _, method := range []ocspload.Method{ocspload.GET, ocspload.POST} {
			res, err := ocspload.Run(ctx, ocspload.Options{Addr: srv.Addr, Prefix: srv.Prefix,
				Method: method, Requests: reqs, Conns: 16, Duration: 500 * time.Millisecond,
				CheckEvery: 1})
			if err != nil {
				t.Fatal(err)
			}
			if res.Ops == 0 || res.Errors > 0 {
				t.Errorf("%s nonce=%v: %d answers, %d failures, first: %v",
					method, nonce, res.Ops, res.Errors, res.FirstError)
			}
		}
	}
}
