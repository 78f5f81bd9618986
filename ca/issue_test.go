package ca_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"anchor/ca"
	"anchor/fsm"
	"anchor/internal/testenv"
)

func newCSR(t *testing.T, key crypto.Signer, cn string, dns []string, ips []net.IP) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn}, DNSNames: dns, IPAddresses: ips,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func p256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func parse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIssue_EveryNodeSignsWithWrappedKey issues through each node's own HSM,
// so it fails unless the SubCA key reached every node by wrapping.
func TestIssue_EveryNodeSignsWithWrappedKey(t *testing.T) {
	env := testenv.New(t, 3, testenv.Options{})
	ctx := context.Background()
	dir := t.TempDir()
	writePEM(t, filepath.Join(dir, "root.pem"), env.Root.Raw)
	writePEM(t, filepath.Join(dir, "subca.pem"), env.SubCA.Raw)
	serials := map[string]bool{}
	for i, m := range env.Members {
		csr := newCSR(t, p256(t), "", []string{"Node.Example.Test"}, []net.IP{net.ParseIP("10.1.2.3")})
		issued, err := m.Issuer.Issue(ctx, &ca.Request{ChainID: env.ChainID, CSR: csr})
		if err != nil {
			t.Fatalf("issue on node %d: %v", i+1, err)
		}
		leaf := parse(t, issued.Credential.DER)
		if serials[issued.Credential.Serial] {
			t.Fatalf("serial %s issued twice", issued.Credential.Serial)
		}
		serials[issued.Credential.Serial] = true
		if got := leaf.DNSNames; len(got) != 1 || got[0] != "node.example.test" {
			t.Errorf("DNS names %v, want the lower-cased [node.example.test]", got)
		}
		if leaf.SerialNumber.Sign() <= 0 || len(leaf.SerialNumber.Bytes()) > 16 {
			t.Errorf("serial %x is not a positive value of at most 16 octets", leaf.SerialNumber)
		}
		leafPath := filepath.Join(dir, "leaf.pem")
		writePEM(t, leafPath, issued.Credential.DER)
		out, err := exec.Command("openssl", "verify", "-CAfile", filepath.Join(dir, "root.pem"),
			"-untrusted", filepath.Join(dir, "subca.pem"), leafPath).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "OK") {
			t.Fatalf("openssl verify of node %d certificate: %v\n%s", i+1, err, out)
		}
	}
}

func TestIssue_RenewalKeepsKeyAddsCredential(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	ctx := context.Background()
	key := p256(t)
	var creds []*fsm.Credential
	for range 2 {
		issued, err := env.Members[0].Issuer.Issue(ctx, &ca.Request{
			ChainID: env.ChainID, CSR: newCSR(t, key, "", []string{"renew.example.test"}, nil),
		})
		if err != nil {
			t.Fatal(err)
		}
		creds = append(creds, issued.Credential)
	}
	if creds[0].CertificateID != creds[1].CertificateID {
		t.Fatalf("renewal with the same key made certificate %s, want %s", creds[1].CertificateID, creds[0].CertificateID)
	}
	other, err := env.Members[0].Issuer.Issue(ctx, &ca.Request{
		ChainID: env.ChainID, CSR: newCSR(t, p256(t), "", []string{"renew.example.test"}, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	if other.Credential.CertificateID == creds[0].CertificateID {
		t.Fatal("a new key renewed the old certificate, want a new certificate")
	}
	_ = env.Members[0].State().View(func(tx *fsm.Tx) error {
		c, err := tx.Certificate(creds[0].CertificateID)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Serials) != 2 {
			t.Errorf("certificate has %d credentials, want 2", len(c.Serials))
		}
		return nil
	})
}

func TestIssue_RejectsBadRequestsAndStoresNothing(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tampered := newCSR(t, p256(t), "", []string{"a.example.test"}, nil)
	tampered.Signature[len(tampered.Signature)-1] ^= 0xff
	cases := []struct {
		name string
		csr  *x509.CertificateRequest
		want string
	}{
		{"bad signature", tampered, "signature"},
		{"weak RSA", newCSR(t, weak, "", []string{"a.example.test"}, nil), "rsa-1024"},
		{"P-224", newCSR(t, p224, "", []string{"a.example.test"}, nil), "curve"},
		{"no names", newCSR(t, p256(t), "", nil, nil), "no DNS name"},
		{"CN not a SAN", newCSR(t, p256(t), "other.test", []string{"a.example.test"}, nil), "common name"},
		{"bad DNS name", newCSR(t, p256(t), "", []string{"bad_name.test"}, nil), "invalid DNS name"},
		{"Ed25519 not listed", newCSR(t, edKey, "", []string{"a.example.test"}, nil), "key_types"},
		{"RSA exponent 3", newCSR(t, rsaExponent3(t), "", []string{"a.example.test"}, nil),
			"public exponent 3"},
		{"no CSR", nil, "no CSR"},
	}

	before := m.State().LastApplied()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := &ca.Request{ChainID: env.ChainID, CSR: tc.csr}
			err := m.Issuer.Check(req)
			if fsm.CodeOf(err) != fsm.CodeInvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check: error %v (code %s), want invalid_argument naming %q", err, fsm.CodeOf(err), tc.want)
			}
			_, err = m.Issuer.Issue(context.Background(), req)
			if err == nil {
				t.Fatal("issued, want rejection")
			}
			if fsm.CodeOf(err) != fsm.CodeInvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q (code %s), want invalid_argument naming %q", err, fsm.CodeOf(err), tc.want)
			}
		})
	}
	good := &ca.Request{ChainID: env.ChainID, CSR: newCSR(t, p256(t), "", []string{"a.example.test"}, nil)}
	if err := m.Issuer.Check(good); err != nil {
		t.Errorf("Check of a valid request: %v", err)
	}
	// Issue skips the signature that Check verified, but not a CSR put in
	// its place afterwards.
	good.CSR = tampered
	if _, err := m.Issuer.Issue(context.Background(), good); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("Issue of a CSR assigned after Check: error %v, want a signature error", err)
	}
	if after := m.State().LastApplied(); after != before {
		t.Fatalf("rejected requests advanced the log from %d to %d", before, after)
	}
}

func writePEM(t *testing.T, path string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
