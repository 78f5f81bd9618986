package fsm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// issueTestLeaf records a leaf of the SubCA with the given serial.
func (s *acmeState) issueTestLeaf(serial *big.Int) {
	s.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	now := time.Now().Add(-time.Minute)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "leaf.example.net"},
		DNSNames: []string{"leaf.example.net"}, NotBefore: now, NotAfter: now.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		s.t.Fatal(err)
	}
	s.must(CmdIssueCredential, IssueCredential{
		ChainID: s.chain, CAID: s.chain + "/sub", Names: []string{"leaf.example.net"}, DER: der,
	})
}

func testSerial(t testing.TB) *big.Int {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		t.Fatal(err)
	}
	return serial.Add(serial, big.NewInt(1))
}

func (s *acmeState) view(fn func(tx *Tx) error) {
	s.t.Helper()
	if err := s.fsm.View(fn); err != nil {
		s.t.Fatal(err)
	}
}

func TestRevocationIndex_ShardsPartitionRevocations(t *testing.T) {
	s := newACMEState(t)
	subID := s.chain + "/sub"
	const leaves, shards = 40, 16
	revoked := map[string]int{} // serial → reason
	for i := range leaves {
		serial := testSerial(t)
		s.issueTestLeaf(serial)
		s.must(CmdRevoke, Revoke{Serial: SerialKey(serial), Reason: i % 6})
		revoked[SerialKey(serial)] = i % 6
	}

	seen := map[string]bool{}
	s.view(func(tx *Tx) error {
		if n := tx.RevocationCount(subID); n != leaves {
			t.Errorf("RevocationCount = %d, want %d", n, leaves)
		}
		for shard := range shards {
			err := tx.ShardRevocations(subID, shard, shards, func(r *Revocation) bool {
				key := SerialKey(r.Serial)
				if got := ShardOf(r.Serial, shards); got != shard {
					t.Errorf("serial %s listed in shard %d, ShardOf = %d", key, shard, got)
				}
				if reason, ok := revoked[key]; !ok || reason != r.Reason {
					t.Errorf("serial %s: reason %d, want %d (revoked %v)", key, r.Reason, reason, ok)
				}
				if seen[key] {
					t.Errorf("serial %s listed twice", key)
				}
				seen[key] = true
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return nil
	})
	if len(seen) != leaves {
		t.Errorf("shards list %d serials, want %d", len(seen), leaves)
	}
}

func TestShardOf_EqualsSerialModulo(t *testing.T) {
	for range 200 {
		serial := testSerial(t)
		for _, shards := range []int{1, 2, 16, 128, 256} {
			want := int(new(big.Int).Mod(serial, big.NewInt(int64(shards))).Int64())
			if got := ShardOf(serial, shards); got != want {
				t.Fatalf("ShardOf(%s, %d) = %d, want %d", serial.Text(16), shards, got, want)
			}
		}
	}
}

func TestLastRevocationIndex_MarksOnlyTheShard(t *testing.T) {
	s := newACMEState(t)
	subID := s.chain + "/sub"
	serial := testSerial(t)
	s.issueTestLeaf(serial)
	s.must(CmdRevoke, Revoke{Serial: SerialKey(serial), Reason: 1})
	shard := ShardOf(serial, DefaultCRLShards)

	s.view(func(tx *Tx) error {
		for i := range DefaultCRLShards {
			got := tx.LastRevocationIndex(ShardScope(subID, i), DefaultCRLShards)
			if want := map[bool]uint64{true: s.index, false: 0}[i == shard]; got != want {
				t.Errorf("shard %d: LastRevocationIndex = %d, want %d", i, got, want)
			}
		}
		if got := tx.LastRevocationIndex(FullScope(subID), DefaultCRLShards); got != s.index {
			t.Errorf("full scope: LastRevocationIndex = %d, want %d", got, s.index)
		}
		return nil
	})
}

func TestRevocationsSince_ListsLaterRevocationsOnly(t *testing.T) {
	s := newACMEState(t)
	subID := s.chain + "/sub"
	var serials []*big.Int
	for range 3 {
		serial := testSerial(t)
		s.issueTestLeaf(serial)
		serials = append(serials, serial)
	}
	s.must(CmdRevoke, Revoke{Serial: SerialKey(serials[0]), Reason: 1})
	mark := s.index
	s.must(CmdRevoke, Revoke{Serial: SerialKey(serials[1]), Reason: 4})
	s.must(CmdRevoke, Revoke{Serial: SerialKey(serials[2]), Reason: 5})

	var got []string
	s.view(func(tx *Tx) error {
		return tx.RevocationsSince(subID, mark, func(r *Revocation) bool {
			got = append(got, SerialKey(r.Serial))
			return true
		})
	})
	want := []string{SerialKey(serials[1]), SerialKey(serials[2])}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("RevocationsSince(%d) = %v, want %v in log order", mark, got, want)
	}
}

func TestConfigureCRLShards_FixedAfterIssuance(t *testing.T) {
	s := newACMEState(t)
	subID := s.chain + "/sub"
	err := s.apply(CmdConfigureCRLShards, ConfigureCRLShards{CAID: subID, Shards: 12})
	if CodeOf(err) != CodeInvalidArgument {
		t.Errorf("12 shards: got %v, want invalid_argument", err)
	}
	err = s.apply(CmdConfigureCRLShards, ConfigureCRLShards{CAID: s.chain + "/root", Shards: 4})
	if CodeOf(err) != CodeInvalidArgument {
		t.Errorf("shards of a root: got %v, want invalid_argument", err)
	}
	s.issueTestLeaf(testSerial(t))
	err = s.apply(CmdConfigureCRLShards, ConfigureCRLShards{CAID: subID, Shards: 64})
	if CodeOf(err) != CodeFailedPrecondition {
		t.Errorf("64 shards after issuance: got %v, want failed_precondition", err)
	}
	err = s.apply(CmdConfigureCRLShards, ConfigureCRLShards{CAID: subID, Shards: DefaultCRLShards})
	if err != nil {
		t.Errorf("repeating the pinned count: %v", err)
	}
}

func TestConfigureCRLShards_BeforeIssuance(t *testing.T) {
	s := newACMEState(t)
	subID := s.chain + "/sub"
	s.must(CmdConfigureCRLShards, ConfigureCRLShards{CAID: subID, Shards: 128})
	s.issueTestLeaf(testSerial(t))
	s.view(func(tx *Tx) error {
		if n, err := tx.CRLShards(subID); err != nil || n != 128 {
			t.Errorf("CRLShards = %d, %v, want 128", n, err)
		}
		return nil
	})
}

func TestRevokeSubCA_IndexedUnderRoot(t *testing.T) {
	s := newACMEState(t)
	subID, rootID := s.chain+"/sub", s.chain+"/root"
	err := s.apply(CmdRevokeSubCA, RevokeSubCA{CAID: rootID, Reason: 2})
	if CodeOf(err) != CodeInvalidArgument {
		t.Errorf("revoking a root: got %v, want invalid_argument", err)
	}
	err = s.apply(CmdRevokeSubCA, RevokeSubCA{CAID: subID, Reason: 8})
	if CodeOf(err) != CodeInvalidArgument {
		t.Errorf("reason removeFromCRL: got %v, want invalid_argument", err)
	}
	s.must(CmdRevokeSubCA, RevokeSubCA{CAID: subID, Reason: 2})
	err = s.apply(CmdRevokeSubCA, RevokeSubCA{CAID: subID, Reason: 2})
	if CodeOf(err) != CodeAlreadyExists {
		t.Errorf("second revocation: got %v, want already_exists", err)
	}

	s.view(func(tx *Tx) error {
		rev, err := tx.CARevocation(subID)
		if err != nil {
			t.Fatalf("CARevocation: %v", err)
		}
		var listed []string
		err = tx.Revocations(rootID, func(r *Revocation) bool {
			listed = append(listed, SerialKey(r.Serial))
			if r.Reason != 2 {
				t.Errorf("root index lists reason %d, want 2", r.Reason)
			}
			return true
		})
		if err != nil || len(listed) != 1 || listed[0] != rev.Serial {
			t.Errorf("root index lists %v (%v), want [%s]", listed, err, rev.Serial)
		}
		return nil
	})
}

// BenchmarkShardRevocations measures reading one shard of 16 and the whole
// CA from an index of 10,000 to 1,000,000 revocations, as the CRL Publisher
// does.
func BenchmarkShardRevocations(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			f, inShard := benchIndex(b, n)
			b.Run("shard_of_16", func(b *testing.B) {
				defer reportCPU(b)()
				for b.Loop() {
					benchScan(b, f, func(tx *Tx, fn func(*Revocation) bool) error {
						return tx.ShardRevocations("ca", benchShard, 16, fn)
					}, inShard)
				}
			})
			b.Run("full", func(b *testing.B) {
				defer reportCPU(b)()
				for b.Loop() {
					benchScan(b, f, func(tx *Tx, fn func(*Revocation) bool) error {
						return tx.Revocations("ca", fn)
					}, n)
				}
			})
		})
	}
}

// benchShard is the shard of 16 that BenchmarkShardRevocations reads.
const benchShard = 3

func benchScan(b *testing.B, f *FSM, scan func(*Tx, func(*Revocation) bool) error, want int) {
	var got int
	err := f.View(func(tx *Tx) error {
		return scan(tx, func(*Revocation) bool {
			got++
			return true
		})
	})
	if err != nil {
		b.Fatal(err)
	}
	if got != want {
		b.Fatalf("scan listed %d revocations, want %d", got, want)
	}
}

// benchIndex writes n revocations of random 128-bit serials for CA "ca"
// straight into the index, in transactions of 10,000. It returns the state
// and the number of revocations in benchShard of 16.
func benchIndex(b *testing.B, n int) (*FSM, int) {
	b.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	f, err := Open(filepath.Join(b.TempDir(), "state.db"), logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	now := time.Now().UTC().Truncate(time.Second)
	inShard := 0
	for done := 0; done < n; {
		err := f.db.Update(func(btx *bolt.Tx) error {
			for ; done < n; done++ {
				tx := &Tx{tx: btx, index: uint64(done + 1)}
				r := &Revocation{Serial: testSerial(b), RevokedAt: now, Reason: done % 6, NotAfter: now}
				if ShardOf(r.Serial, 16) == benchShard {
					inShard++
				}
				if err := indexRevocation(tx, "ca", r); err != nil {
					return err
				}
				if done%10_000 == 9_999 {
					done++
					return nil
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return f, inShard
}

// reportCPU reports the process's CPU time per operation, user and system,
// from the call until the returned function runs. On a shared machine it
// varies less than the elapsed time.
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
