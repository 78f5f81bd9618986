//go:build bench

package inproc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"testing"

	"anchor/fsm"
	"anchor/internal/testenv"
)

// leaderOf returns the index of the member that leads the Raft cluster.
func leaderOf(t *testing.T, env *testenv.Env) int {
	t.Helper()
	for i, m := range env.Members {
		if m.Cluster.IsLeader() {
			return i
		}
	}
	t.Fatal("no member is the Raft leader")
	return -1
}

// subCA returns the default SubCA of the test chain.
func subCA(t *testing.T, env *testenv.Env) *fsm.CA {
	t.Helper()
	var sub *fsm.CA
	err := env.Members[0].State().View(func(tx *fsm.Tx) error {
		chain, err := tx.Chain(env.ChainID)
		if err != nil {
			return err
		}
		sub, err = tx.CA(chain.DefaultSubCAID)
		return err
	})
	if err != nil {
		t.Fatalf("read default SubCA: %v", err)
	}
	return sub
}

// newCSRs returns n CSRs for distinct names under bench.test, each with a
// new P-256 key, made before the measurement so that it covers the CA only.
func newCSRs(t *testing.T, n int) []*x509.CertificateRequest {
	t.Helper()
	out := make([]*x509.CertificateRequest, n)
	for i := range out {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			DNSNames: []string{fmt.Sprintf("c%d.bench.test", i)},
		}, key)
		if err != nil {
			t.Fatal(err)
		}
		if out[i], err = x509.ParseCertificateRequest(der); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
