package fsm

import (
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// certStore returns a state with n certificates written directly, one
// credential each. Certificate i is in chain chains[i%len(chains)] and, for
// odd i, in service "o1/svc".
func certStore(tb testing.TB, n int, chains []string) *FSM {
	tb.Helper()
	f, err := Open(filepath.Join(tb.TempDir(), "state.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	der := make([]byte, 700) // about the size of a P-256 leaf
	now := time.Now().UTC()
	for done := 0; done < n; {
		err := f.db.Update(func(btx *bolt.Tx) error {
			tx := &Tx{tx: btx}
			for end := min(n, done+10_000); done < end; done++ {
				id := hex.EncodeToString(uint64Bytes(uint64(done + 1)))
				serial := fmt.Sprintf("%032x", done+1)
				c := Certificate{
					ID: id, ChainID: chains[done%len(chains)], CAID: "sub",
					Names: []string{"host" + strconv.Itoa(done) + ".example.net"}, Serials: []string{serial},
					CreatedAt: now,
				}
				if done%2 == 1 {
					c.ServiceID = "o1/svc"
				}
				if err := tx.put(bucketCertificates, id, c); err != nil {
					return err
				}
				cred := Credential{Serial: serial, CertificateID: id, CAID: "sub", DER: der, IssuedAt: now}
				if err := tx.put(bucketCredentials, serial, cred); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return f
}

func scanIDs(t *testing.T, f *FSM, filter CertificateFilter, limit int) []string {
	t.Helper()
	var ids []string
	err := f.View(func(tx *Tx) error {
		return tx.ScanCertificates(filter, func(c *Certificate) bool {
			ids = append(ids, c.ID)
			return len(ids) < limit
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestScanCertificates_FiltersInCreationOrder(t *testing.T) {
	f := certStore(t, 12, []string{"o1/r1/c1", "o1/r2/c1", "o2/r1/c1"})
	id := func(i int) string { return hex.EncodeToString(uint64Bytes(uint64(i + 1))) }

	all := scanIDs(t, f, CertificateFilter{}, 100)
	if len(all) != 12 || !slices.IsSorted(all) {
		t.Errorf("unfiltered scan: %v, want 12 IDs in order", all)
	}
	realm := scanIDs(t, f, CertificateFilter{ChainPrefix: "o1/r1/"}, 100)
	if want := []string{id(0), id(3), id(6), id(9)}; !slices.Equal(realm, want) {
		t.Errorf("realm o1/r1: %v, want %v", realm, want)
	}
	org := scanIDs(t, f, CertificateFilter{ChainPrefix: "o1/", ServiceID: "o1/svc"}, 100)
	if want := []string{id(1), id(3), id(7), id(9)}; !slices.Equal(org, want) {
		t.Errorf("organization o1, service o1/svc: %v, want %v", org, want)
	}
	if first := scanIDs(t, f, CertificateFilter{}, 2); !slices.Equal(first, all[:2]) {
		t.Errorf("scan stopped after two: %v, want %v", first, all[:2])
	}
}

// TestScanCertificates_ChainIDIsExact lists chain c1 beside chain c10,
// whose ID starts with c1's.
func TestScanCertificates_ChainIDIsExact(t *testing.T) {
	f := certStore(t, 4, []string{"o1/r1/c1", "o1/r1/c10"})
	id := func(i int) string { return hex.EncodeToString(uint64Bytes(uint64(i + 1))) }
	got := scanIDs(t, f, CertificateFilter{ChainID: "o1/r1/c1"}, 100)
	if want := []string{id(0), id(2)}; !slices.Equal(got, want) {
		t.Errorf("chain o1/r1/c1: %v, want %v", got, want)
	}
	if got := scanIDs(t, f, CertificateFilter{ChainID: "o1/r1/c"}, 100); len(got) != 0 {
		t.Errorf("chain o1/r1/c: %v, want none", got)
	}
}

func TestListCertificates_IncludesCredentials(t *testing.T) {
	f := certStore(t, 3, []string{"o1/r1/c1"})
	err := f.View(func(tx *Tx) error {
		entries, err := tx.ListCertificates(CertificateFilter{})
		if err != nil {
			return err
		}
		if len(entries) != 3 {
			t.Fatalf("%d entries, want 3", len(entries))
		}
		for _, e := range entries {
			if len(e.Credentials) != 1 || e.Credentials[0].Serial != e.Certificate.Serials[0] {
				t.Errorf("certificate %s: credentials %v, want its serial %s",
					e.Certificate.ID, e.Credentials, e.Certificate.Serials[0])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkCertificateListing compares the two ways of reading a listing of
// 100,000 certificates: every certificate with its credentials
// (ListCertificates), and a scan that only counts the certificates of one
// realm, which is what a page of the admin API's listing costs.
func BenchmarkCertificateListing(b *testing.B) {
	f := certStore(b, 100_000, []string{"o1/r1/c1", "o1/r2/c1"})
	b.Run("list_with_credentials", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			_ = f.View(func(tx *Tx) error {
				entries, err := tx.ListCertificates(CertificateFilter{})
				if err != nil || len(entries) != 100_000 {
					b.Fatalf("%d entries, %v", len(entries), err)
				}
				return nil
			})
		}
	})
	b.Run("scan_realm", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			_ = f.View(func(tx *Tx) error {
				n := 0
				err := tx.ScanCertificates(CertificateFilter{ChainPrefix: "o1/r1/"}, func(*Certificate) bool {
					n++
					return true
				})
				if err != nil || n != 50_000 {
					b.Fatalf("%d certificates, %v", n, err)
				}
				return nil
			})
		}
	})
}
