//go:build bench

package inproc

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"anchor/ca"
	"anchor/internal/testenv"
)

// capathConc is the number of goroutines that issue or sign at once, the
// low end of the ACME benchmark's concurrent accounts.
const capathConc = 16

// TestBenchCAPath measures ca.Issuer.Issue end to end on a one-node and a
// three-node cluster, and raw signatures with the SubCA's key in the same
// SoftHSM2 token as the baseline.
func TestBenchCAPath(t *testing.T) {
	csrs := newCSRs(t, 256)
	for _, nodes := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d-node", nodes), func(t *testing.T) {
			env := testenv.New(t, nodes, testenv.Options{})
			target := fmt.Sprintf("anchor-%d", nodes)
			leader := leaderOf(t, env)
			if nodes == 1 {
				benchRawSign(t, env, leader)
			}
			benchIssue(t, env, env.Members[leader].Issuer, target, "Issuer.Issue on leader", csrs)
			if nodes > 1 {
				follower := (leader + 1) % nodes
				benchIssue(t, env, env.Members[follower].Issuer, target, "Issuer.Issue on follower", csrs)
			}
		})
	}
}

func benchRawSign(t *testing.T, env *testenv.Env, member int) {
	signer, err := env.Members[member].HSM.Signer(subCA(t, env).KeyID)
	if err != nil {
		t.Fatalf("SubCA signer: %v", err)
	}
	digest := sha256.Sum256([]byte("tbsCertificate"))
	warmup, measure := window(5 * time.Second)
	for run := 1; run <= runs(); run++ {
		o := drive(capathConc, warmup, measure, func(context.Context, int) error {
			_, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
			return err
		})
		save(t, o, o.record("capath", "hsm-raw", "Sign P-256", capathConc, run))
	}
}

func benchIssue(t *testing.T, env *testenv.Env, issuer *ca.Issuer, target, name string,
	csrs []*x509.CertificateRequest) {
	warmup, measure := window(5 * time.Second)
	for run := 1; run <= runs(); run++ {
		next := make([]int, capathConc)
		o := drive(capathConc, warmup, measure, func(ctx context.Context, w int) error {
			next[w]++
			csr := csrs[(w*len(csrs)/capathConc+next[w])%len(csrs)]
			_, err := issuer.Issue(ctx, &ca.Request{ChainID: env.ChainID, CSR: csr})
			return err
		})
		save(t, o, o.record("capath", target, name, capathConc, run))
	}
}
