package ca_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"anchor/ca"
	"anchor/fsm"
	"anchor/internal/testenv"
)

// csrWith builds a CSR for names of any kind (DNS names, IP addresses,
// email addresses and URIs), classified by fsm.NameKind.
func csrWith(t *testing.T, key crypto.Signer, cn string, names ...string) *x509.CertificateRequest {
	t.Helper()
	csr, err := buildCSR(key, cn, names...)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// buildCSR is csrWith for goroutines other than the test's.
func buildCSR(key crypto.Signer, cn string, names ...string) (*x509.CertificateRequest, error) {
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}
	for _, n := range names {
		switch fsm.NameKind(n) {
		case fsm.NameIP:
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(n))
		case fsm.NameEmail:
			tmpl.EmailAddresses = append(tmpl.EmailAddresses, n)
		case fsm.NameURI:
			u, err := url.Parse(n)
			if err != nil {
				return nil, err
			}
			tmpl.URIs = append(tmpl.URIs, u)
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificateRequest(der)
}

func rsaKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rsaExponent3 returns a 2048-bit RSA key with public exponent 3, which
// crypto/rsa does not generate but signs with.
func rsaExponent3(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	three := big.NewInt(3)
	prime := func() *big.Int {
		for {
			p, err := rand.Prime(rand.Reader, 1024)
			if err != nil {
				t.Fatal(err)
			}
			if new(big.Int).Mod(p, three).Int64() != 1 {
				return p
			}
		}
	}
	p, q := prime(), prime()
	one := big.NewInt(1)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 3},
		D:         new(big.Int).ModInverse(three, phi),
		Primes:    []*big.Int{p, q},
	}
	k.Precompute()
	return k
}

// newSubCA creates a SubCA of the test chain on member 0, which holds the
// root key.
func newSubCA(t *testing.T, env *testenv.Env, name string, policy fsm.Policy) *fsm.CA {
	t.Helper()
	return newSubCAWith(t, env, ca.SubCARequest{Name: name, Policy: policy})
}

func newSubCAWith(t *testing.T, env *testenv.Env, req ca.SubCARequest) *fsm.CA {
	t.Helper()
	m := env.Members[0]
	if req.ChainID == "" {
		req.ChainID = env.ChainID
	}
	req.URLs = env.URLs
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sub, err := ca.CreateSubCA(ctx, m.Cluster, m.HSM, m.Cluster.ID(), req)
	if err != nil {
		t.Fatalf("create SubCA %s: %v", req.Name, err)
	}
	return sub
}

func issueOn(t *testing.T, m *testenv.Member, req *ca.Request) *ca.Issued {
	t.Helper()
	issued, err := m.Issuer.Issue(context.Background(), req)
	if err != nil {
		t.Fatalf("issue %v: %v", req.CSR.DNSNames, err)
	}
	return issued
}

// wantRejected checks that err is an invalid-argument error whose message
// contains every fragment.
func wantRejected(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want a rejection naming %q", fragments)
	}
	if fsm.CodeOf(err) != fsm.CodeInvalidArgument {
		t.Errorf("error %q has code %s, want %s", err, fsm.CodeOf(err), fsm.CodeInvalidArgument)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not name %q", err, f)
		}
	}
}

// opensslVerify runs openssl verify on a leaf with the root as trust
// anchor and the SubCA as intermediate, and returns its output.
func opensslVerify(t *testing.T, dir string, root, sub, leaf []byte) (string, error) {
	t.Helper()
	rootPath, subPath, leafPath := dir+"/root.pem", dir+"/sub.pem", dir+"/leaf.pem"
	writePEM(t, rootPath, root)
	writePEM(t, subPath, sub)
	writePEM(t, leafPath, leaf)
	out, err := exec.Command("openssl", "verify", "-CAfile", rootPath, "-untrusted", subPath,
		leafPath).CombinedOutput()
	return string(out), err
}

func certOf(t *testing.T, c *fsm.CA) *x509.Certificate {
	t.Helper()
	cert, err := c.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
