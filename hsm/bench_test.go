package hsm_test

import (
	"crypto"
	"crypto/sha256"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"anchor/hsm"
	softhsmtest "anchor/softhsm-test"

	"github.com/miekg/pkcs11"
)

// benchParallelism multiplies GOMAXPROCS into the number of goroutines that sign at once
// in the parallel benchmarks: 16 on two cores, as many as the default MaxSessions.
const benchParallelism = 8

// ckmEdDSA is CKM_EDDSA (PKCS#11 v3.0), missing from miekg/pkcs11 v1.1.2.
const ckmEdDSA = 0x00001057

// benchKey opens a fresh token, generates key "ca-1" with alg through the hsm package
// and returns the HSM with its Signer.
func benchKey(b *testing.B, label string, alg hsm.Algorithm) (
	*softhsmtest.Token, *hsm.HSM, crypto.Signer) {
	b.Helper()
	token := newToken(b, label)
	h := openHSM(b, token, discardLogger())
	signer, err := h.GenerateKey("ca-1", alg)
	if err != nil {
		b.Fatalf("GenerateKey: %v", err)
	}
	return token, h, signer
}

// benchInput returns what the benchmarks sign: a SHA-256 digest for ECDSA, and for
// Ed25519 a message of the same length.
func benchInput(alg hsm.Algorithm) ([]byte, crypto.SignerOpts) {
	digest := sha256.Sum256([]byte("benchmark"))
	if alg == hsm.Ed25519 {
		return digest[:], crypto.Hash(0)
	}
	return digest[:], crypto.SHA256
}

// benchLayer signs through the hsm package from benchParallelism*GOMAXPROCS goroutines.
func benchLayer(b *testing.B, alg hsm.Algorithm) {
	_, _, signer := benchKey(b, "bench-layer", alg)
	input, opts := benchInput(alg)
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	start := cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := signer.Sign(nil, input, opts); err != nil {
				b.Errorf("Sign: %v", err)
				return
			}
		}
	})
	reportCPU(b, start)
}

// benchRaw signs with C_SignInit and C_Sign from as many goroutines as benchLayer, each
// with a read-write session of its own (as crypto11 and the raw pool open them) and no
// layer between, as the baseline for benchLayer.
func benchRaw(b *testing.B, alg hsm.Algorithm, mechanism uint) {
	token, _, _ := benchKey(b, "bench-raw", alg)
	raw := openRawToken(b, token)
	key := raw.findObject(b, pkcs11.CKO_PRIVATE_KEY, "ca-1")
	input, _ := benchInput(alg)
	mechanisms := []*pkcs11.Mechanism{pkcs11.NewMechanism(mechanism, nil)}
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	start := cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		session, err := raw.ctx.OpenSession(raw.slot,
			pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			b.Errorf("C_OpenSession: %v", err)
			return
		}
		defer func() { _ = raw.ctx.CloseSession(session) }()
		for pb.Next() {
			if err := raw.ctx.SignInit(session, mechanisms, key); err != nil {
				b.Errorf("C_SignInit: %v", err)
				return
			}
			if _, err := raw.ctx.Sign(session, input); err != nil {
				b.Errorf("C_Sign: %v", err)
				return
			}
		}
	})
	reportCPU(b, start)
}

// BenchmarkSign_P256 measures one ECDSA P-256 signature at a time through the hsm
// package: the session pool, the key handle cache, the retry wrapper and the DER
// encoding of the signature.
func BenchmarkSign_P256(b *testing.B) {
	_, _, signer := benchKey(b, "bench-hsm", hsm.ECDSAP256)
	input, opts := benchInput(hsm.ECDSAP256)
	start := cpuTime(b)
	for b.Loop() {
		if _, err := signer.Sign(nil, input, opts); err != nil {
			b.Fatalf("Sign: %v", err)
		}
	}
	reportCPU(b, start)
}

// BenchmarkSign_P256_RawPKCS11 measures C_SignInit and C_Sign on the same kind of key
// and token with no layer between, as the baseline for BenchmarkSign_P256.
func BenchmarkSign_P256_RawPKCS11(b *testing.B) {
	token, _, _ := benchKey(b, "bench-raw", hsm.ECDSAP256)
	raw := openRawToken(b, token)
	key := raw.findObject(b, pkcs11.CKO_PRIVATE_KEY, "ca-1")
	mechanism := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}
	input, _ := benchInput(hsm.ECDSAP256)

	start := cpuTime(b)
	for b.Loop() {
		if err := raw.ctx.SignInit(raw.session, mechanism, key); err != nil {
			b.Fatalf("C_SignInit: %v", err)
		}
		if _, err := raw.ctx.Sign(raw.session, input); err != nil {
			b.Fatalf("C_Sign: %v", err)
		}
	}
	reportCPU(b, start)
}

// BenchmarkSignParallel_P256 is BenchmarkSign_P256 from many goroutines.
func BenchmarkSignParallel_P256(b *testing.B) { benchLayer(b, hsm.ECDSAP256) }

// BenchmarkSignParallel_P256_RawPKCS11 is the baseline of BenchmarkSignParallel_P256.
func BenchmarkSignParallel_P256_RawPKCS11(b *testing.B) {
	benchRaw(b, hsm.ECDSAP256, pkcs11.CKM_ECDSA)
}

// BenchmarkSignParallel_Ed25519 measures Ed25519 signatures through the hsm package
// from many goroutines.
func BenchmarkSignParallel_Ed25519(b *testing.B) { benchLayer(b, hsm.Ed25519) }

// BenchmarkSignParallel_Ed25519_RawPKCS11 is the baseline of BenchmarkSignParallel_Ed25519.
func BenchmarkSignParallel_Ed25519_RawPKCS11(b *testing.B) {
	benchRaw(b, hsm.Ed25519, ckmEdDSA)
}

// BenchmarkSignParallel_P256_TwoContexts signs through two HSM values opened on the
// same token, so two PKCS#11 contexts with two session pools, alternating between
// them. It shows whether a second PKCS#11 context in one process adds throughput.
func BenchmarkSignParallel_P256_TwoContexts(b *testing.B) {
	token, first, _ := benchKey(b, "bench-two", hsm.ECDSAP256)
	second := openHSM(b, token, discardLogger())
	signers := make([]crypto.Signer, 2)
	for i, h := range []*hsm.HSM{first, second} {
		signer, err := h.Signer("ca-1")
		if err != nil {
			b.Fatalf("Signer: %v", err)
		}
		signers[i] = signer
	}
	input, opts := benchInput(hsm.ECDSAP256)
	var next atomic.Uint32
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	start := cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		signer := signers[next.Add(1)%2]
		for pb.Next() {
			if _, err := signer.Sign(nil, input, opts); err != nil {
				b.Errorf("Sign: %v", err)
				return
			}
		}
	})
	reportCPU(b, start)
}

// cpuTime returns the user and system CPU time the process has used: SoftHSM2's work,
// which runs in the process, and the Go side.
func cpuTime(b *testing.B) time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// reportCPU reports the CPU time per signature since start as cpu-ns/op, a figure that
// other processes on the machine disturb less than the wall time per signature.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkSignAlternating_P256 alternates one signature through the hsm package and one
// with C_SignInit and C_Sign on the same key from one goroutine, swapping their order
// every iteration, and reports the mean time of each as layer-ns/op and raw-ns/op. Both
// halves run under the same load from other processes, so their ratio is steadier than
// that of two separate benchmarks.
func BenchmarkSignAlternating_P256(b *testing.B) {
	token, _, signer := benchKey(b, "bench-alternating", hsm.ECDSAP256)
	raw := openRawToken(b, token)
	key := raw.findObject(b, pkcs11.CKO_PRIVATE_KEY, "ca-1")
	mechanism := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}
	input, opts := benchInput(hsm.ECDSAP256)
	signLayer := func() {
		if _, err := signer.Sign(nil, input, opts); err != nil {
			b.Fatalf("Sign: %v", err)
		}
	}
	signRaw := func() {
		if err := raw.ctx.SignInit(raw.session, mechanism, key); err != nil {
			b.Fatalf("C_SignInit: %v", err)
		}
		if _, err := raw.ctx.Sign(raw.session, input); err != nil {
			b.Fatalf("C_Sign: %v", err)
		}
	}

	var layer, direct time.Duration
	for i := 0; b.Loop(); i++ {
		first, second := signLayer, signRaw
		if i%2 == 1 {
			first, second = signRaw, signLayer
		}
		start := time.Now()
		first()
		middle := time.Now()
		second()
		end := time.Now()
		if i%2 == 0 {
			layer, direct = layer+middle.Sub(start), direct+end.Sub(middle)
		} else {
			direct, layer = direct+middle.Sub(start), layer+end.Sub(middle)
		}
	}
	b.ReportMetric(float64(layer)/float64(b.N), "layer-ns/op")
	b.ReportMetric(float64(direct)/float64(b.N), "raw-ns/op")
	b.ReportMetric(float64(layer)/float64(direct), "layer/raw")
}
