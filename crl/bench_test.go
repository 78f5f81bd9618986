package crl

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ThalesIgnite/crypto11"

	"anchor/fsm"
	softhsmtest "anchor/softhsm-test"
)

// benchCA is a SubCA whose ECDSA P-256 key lives in a SoftHSM2 token.
type benchCA struct {
	ca     *fsm.CA
	cert   *x509.Certificate
	signer crypto11.Signer
}

func newBenchCA(b *testing.B) *benchCA {
	b.Helper()
	token, err := softhsmtest.NewToken(filepath.Join(b.TempDir(), "token"), "crl-bench")
	if err != nil {
		b.Fatalf("create SoftHSM2 token: %v", err)
	}
	b.Setenv(softhsmtest.ConfigEnv, token.ConfigPath)
	hsm, err := crypto11.Configure(&crypto11.Config{
		Path: token.ModulePath, TokenLabel: token.Label, Pin: token.PIN,
	})
	if err != nil {
		b.Fatalf("open SoftHSM2 token: %v", err)
	}
	b.Cleanup(func() { hsm.Close() })

	signer, err := hsm.GenerateECDSAKeyPairWithLabel([]byte("bench"), []byte("bench"), elliptic.P256())
	if err != nil {
		b.Fatal(err)
	}

	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Bench SubCA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		b.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	ca := &fsm.CA{
		ID: subID, Kind: fsm.CAKindSub, CertDER: der,
		Policy: fsm.Policy{CRLURLs: []string{"http://pki.example.net/crl/" + subID + ".crl"}},
	}
	return &benchCA{ca: ca, cert: cert, signer: signer}
}

// benchRevocations returns n revocations with random 128-bit serials, as the
// index returns them; a third have reason unspecified.
func benchRevocations(n int) []fsm.Revocation {
	now := time.Now().UTC().Truncate(time.Second)
	revs := make([]fsm.Revocation, n)
	for i := range revs {
		serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
		revs[i] = fsm.Revocation{
			Serial: serial, RevokedAt: now.Add(-time.Duration(i) * time.Second),
			Reason: []int{0, 1, 4}[i%3], NotAfter: now.Add(90 * 24 * time.Hour), Index: uint64(i + 1),
		}
	}
	return revs
}

// BenchmarkCRLGeneration measures what the Publisher does for one complete
// CRL of n revocations once they are read from the index (see
// fsm.BenchmarkShardRevocations): sort them into entries, encode, and sign
// in SoftHSM2. The apply sub-benchmark measures what every node does when it
// applies the CRL: parse it and verify its signature. Run it with
// -benchtime=1x; the 1,000,000 case takes tens of seconds.
func BenchmarkCRLGeneration(b *testing.B) {
	bc := newBenchCA(b)
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		revs := benchRevocations(n)
		now := time.Now().UTC().Truncate(time.Second)
		var der []byte
		b.Run(fmt.Sprintf("sign/%d", n), func(b *testing.B) {
			defer reportCPU(b)()
			for b.Loop() {
				crl, err := signCRL(&crlTemplate{
					ca: bc.ca, scope: fsm.FullScope(bc.ca.ID), number: 1, sourceIndex: uint64(n),
					thisUpdate: now, nextUpdate: now.Add(DefaultValidity),
					entries: entriesSince(revs, 0),
				}, bc.signer)
				if err != nil {
					b.Fatal(err)
				}
				der = crl.DER
			}
			b.ReportMetric(float64(len(der)), "bytes/crl")
		})
		b.Run(fmt.Sprintf("apply/%d", n), func(b *testing.B) {
			defer reportCPU(b)()
			for b.Loop() {
				rl, err := x509.ParseRevocationList(der)
				if err != nil {
					b.Fatal(err)
				}
				if err := rl.CheckSignatureFrom(bc.cert); err != nil {
					b.Fatal(err)
				}
				if len(rl.RevokedCertificateEntries) != n {
					b.Fatalf("parsed %d entries, want %d", len(rl.RevokedCertificateEntries), n)
				}
			}
		})
	}
}

// reportCPU reports the process's CPU time per operation, user and system,
// from the call until the returned function runs. On a shared machine it
// varies less than the elapsed time. SoftHSM2 runs inside the process, so
// its signing counts.
func reportCPU(b *testing.B) func() {
	start := cpuTime(b)
	return func() {
		b.ReportMetric(float64((cpuTime(b)-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
