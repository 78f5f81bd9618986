//go:build bench

package inproc

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	"anchor/acme"
	"anchor/bench/acmeload"
	"anchor/bench/ocspload"
	"anchor/bench/peers"
	"anchor/ca"
	"anchor/fsm"
	"anchor/internal/testenv"
	"anchor/ocsp"
)

// profileDir is BENCH_PROFILE_DIR, where CPU profiles go; default the test's
// temporary directory.
func profileDir(t *testing.T) string {
	if dir := os.Getenv("BENCH_PROFILE_DIR"); dir != "" {
		return dir
	}
	return t.TempDir()
}

// profile writes a CPU profile of fn to name in profileDir.
func profile(t *testing.T, name string, fn func()) {
	t.Helper()
	f, err := os.Create(filepath.Join(profileDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	fn()
	pprof.StopCPUProfile()
}

// serve serves h on a new loopback listener until the test ends and
// returns its address.
func serve(t *testing.T, h http.Handler, cfg *tls.Config) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		l = tls.NewListener(l, cfg)
	}
	srv := &http.Server{Handler: h, ErrorLog: nil}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestBenchProfileOCSP profiles a node's OCSP responder, in this process,
// under 64 connections of GET requests for cached responses.
func TestBenchProfileOCSP(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	var reqs []*ocspload.Request
	for _, csr := range newCSRs(t, 200) {
		issued, err := m.Issuer.Issue(context.Background(), &ca.Request{ChainID: env.ChainID, CSR: csr})
		if err != nil {
			t.Fatalf("issue: %v", err)
		}
		leaf, err := x509.ParseCertificate(issued.Credential.DER)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ocspload.NewRequest(leaf, env.SubCA, false)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, r)
	}
	responder := ocsp.NewResponder(m.State(), m.HSM, discard(), ocsp.Options{})
	addr := serve(t, responder.Wrap(http.NotFoundHandler()), nil)
	opts := ocspload.Options{Addr: addr, Prefix: "/ocsp", Method: ocspload.GET, Requests: reqs,
		Conns: 4, Duration: time.Second}
	if _, err := ocspload.Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	_, measure := window(8 * time.Second)
	opts.Conns, opts.Duration = 64, measure
	var res *ocspload.Result
	profile(t, "ocsp.pprof", func() {
		var err error
		if res, err = ocspload.Run(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("in-process OCSP: %.0f responses/s, %d errors (%v)",
		float64(res.Ops)/res.Window.Seconds(), res.Errors, res.FirstError)
}

// TestBenchProfileACME profiles three nodes' ACME servers, in this
// process, under issuance from 64 accounts spread over the nodes.
func TestBenchProfileACME(t *testing.T) {
	const accounts = 64
	env := testenv.New(t, 3, testenv.Options{EABIdentifiers: []string{"*.bench.test"}})
	tlsPair, err := peers.SelfSigned(t.TempDir(), "acme", []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(tlsPair.CertFile, tlsPair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, m := range env.Members {
		srv, err := acme.NewServer(m.State(), m.Cluster, m.Issuer, discard(), acme.Options{
			NodeID: m.Cluster.ID(), IsLeader: m.Cluster.IsLeader,
		})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		srv.Register(mux)
		addr := serve(t, mux, &tls.Config{Certificates: []tls.Certificate{cert}})
		dirs = append(dirs, fmt.Sprintf("https://%s/%s/%s/x509/%s/acme/directory",
			addr, testenv.Org, testenv.Realm, testenv.Chain))
	}
	pool := x509.NewCertPool()
	pool.AddCert(tlsPair.Cert)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 2 * accounts,
	}}
	var accts []*acmeload.Account
	for i := range accounts {
		eab := fsm.EABKey{KeyID: fmt.Sprintf("kid-bench-%d", i), HMACKey: make([]byte, 32),
			ChainID: env.ChainID, Identifiers: []string{"*.bench.test"}}
		if _, err := rand.Read(eab.HMACKey); err != nil {
			t.Fatal(err)
		}
		if _, err := env.Members[0].Apply(context.Background(), fsm.MustCommand(fsm.CmdCreateEAB, eab)); err != nil {
			t.Fatalf("create EAB key: %v", err)
		}
		a, err := acmeload.NewAccount(context.Background(), client, dirs, &acmeload.EAB{
			KeyID: eab.KeyID, HMACKey: base64.RawURLEncoding.EncodeToString(eab.HMACKey)})
		if err != nil {
			t.Fatal(err)
		}
		accts = append(accts, a)
	}
	warmup, measure := window(10 * time.Second)
	var res *acmeload.Result
	profile(t, "acme.pprof", func() {
		res = acmeload.Run(context.Background(), acmeload.Options{
			Accounts: accts, Warmup: warmup, Duration: measure,
			Name: func(i int) string { return fmt.Sprintf("w%d.bench.test", i) },
		})
	})
	t.Logf("in-process ACME, 3 nodes: %.1f certificates/s, %d errors (%v)",
		float64(res.Ops)/res.Window.Seconds(), res.Errors, res.FirstError)
}
