//go:build bench

package inproc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"anchor/fsm"
	"anchor/internal/testenv"
)

// memoryConc is the number of goroutines that commit credentials at once.
const memoryConc = 64

// TestBenchMemory commits BENCH_MEMORY_CREDENTIALS credentials (default
// 100,000; 5,000 with BENCH_QUICK=1) through Raft and the state machine of
// a one-node cluster, then records the process's resident memory and, with
// the node stopped, the sizes of state.db and raft.db.
//
// The certificates look like the cluster's leaves: a P-256 key, the SubCA's
// subject and key identifier, one DNS name and the SubCA's URLs. A software
// key signs them, because the state machine does not check the signature
// and signing in SoftHSM2 would make loading much slower.
func TestBenchMemory(t *testing.T) {
	n := 100_000
	if quick() {
		n = 5_000
	}
	if v, err := strconv.Atoi(os.Getenv("BENCH_MEMORY_CREDENTIALS")); err == nil && v > 0 {
		n = v
	}
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	sub := subCA(t, env)
	forge := newLeafForger(t, env)
	baseRSS := residentBytes(t)

	var next atomic.Int64
	start := time.Now()
	o := drive(memoryConc, 0, 24*time.Hour, func(ctx context.Context, _ int) error {
		if next.Add(1) > int64(n) {
			return errStop
		}
		der, names, err := forge.leaf()
		if err != nil {
			return err
		}
		_, err = m.Apply(ctx, fsm.MustCommand(fsm.CmdIssueCredential, fsm.IssueCredential{
			ChainID: env.ChainID, CAID: sub.ID, Names: names, DER: der,
		}))
		return err
	})
	loadTime := time.Since(start)
	if o.firstError != nil {
		t.Fatalf("commit credentials: %v", o.firstError)
	}

	runtime.GC()
	debug.FreeOSMemory()
	statePath := m.State().Path()
	rec := o.record("memory", "anchor-1", "credentials", memoryConc, 1)
	rec.Rate = float64(o.ops) / loadTime.Seconds()
	rec.Seconds = loadTime.Seconds()
	rec.Extra = map[string]float64{
		"credentials":    float64(o.ops),
		"rss_bytes":      residentBytes(t),
		"rss_anon_bytes": statusBytes(t, "RssAnon"),
		"rss_file_bytes": statusBytes(t, "RssFile"),
		"rss_base_bytes": baseRSS,
	}
	m.Stop()
	rec.Extra["state_db_bytes"] = fileSize(t, statePath)
	used, buckets := usedBytes(t, statePath)
	rec.Extra["state_db_used_bytes"] = used
	for name, n := range buckets {
		rec.Extra["bucket_"+name] = n
	}
	rec.Extra["raft_db_bytes"] = fileSize(t, filepath.Join(filepath.Dir(statePath), "raft.db"))
	save(t, o, rec)
}

// usedBytes returns the size of a bbolt database up to its highest page in
// use, which excludes the room bbolt preallocates at the end of the file,
// and the bytes in use by each top-level bucket, nested buckets included.
func usedBytes(t *testing.T, path string) (float64, map[string]float64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	var size int64
	buckets := map[string]float64{}
	_ = db.View(func(tx *bolt.Tx) error {
		size = tx.Size()
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			st := b.Stats()
			buckets[string(name)] = float64(st.BranchInuse + st.LeafInuse + st.InlineBucketInuse)
			return nil
		})
	})
	return float64(size), buckets
}

// leafForger makes leaf certificates that look like the SubCA's.
type leafForger struct {
	parent *x509.Certificate
	key    *ecdsa.PrivateKey
	seq    atomic.Uint64
}

func newLeafForger(t *testing.T, env *testenv.Env) *leafForger {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	parent := *env.SubCA
	parent.PublicKey = key.Public()
	return &leafForger{parent: &parent, key: key}
}

func (f *leafForger) leaf() ([]byte, []string, error) {
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	names := []string{fmt.Sprintf("m%d.bench.test", f.seq.Add(1))}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(90 * 24 * time.Hour),
		DNSNames: names, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		OCSPServer:            f.parent.OCSPServer,
		IssuingCertificateURL: f.parent.IssuingCertificateURL,
		CRLDistributionPoints: f.parent.CRLDistributionPoints,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.parent, leafKey.Public(), f.key)
	return der, names, err
}

// residentBytes returns VmRSS of this process from /proc/self/status.
func residentBytes(t *testing.T) float64 { return statusBytes(t, "VmRSS") }

// statusBytes returns a field of /proc/self/status that the kernel gives in
// kB, such as RssAnon (heap and stacks) or RssFile (mapped files, state.db
// among them), in bytes.
func statusBytes(t *testing.T, field string) float64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				t.Fatalf("parse %s %q: %v", field, v, err)
			}
			return kb * 1024
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

func fileSize(t *testing.T, path string) float64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return float64(st.Size())
}
