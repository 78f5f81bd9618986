package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"anchor/ca"
	"anchor/cluster"
	"anchor/crl"
	"anchor/fsm"
	"anchor/internal/testenv"
)

// logBuffer collects the cluster's logs as JSON lines, safe for the nodes'
// goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the log lines that contain every one of parts.
func (b *logBuffer) lines(parts ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, line := range strings.Split(b.buf.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}

// fixture is a three-node cluster with the admin API on every member.
type fixture struct {
	env  *testenv.Env
	logs *logBuffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return &fixture{env: testenv.New(t, 3, testenv.Options{Logger: logger}), logs: logs}
}

// conn connects to member i with a new admin certificate of role.
func (f *fixture) conn(t *testing.T, i int, name, role string) *grpc.ClientConn {
	t.Helper()
	return dialWith(t, f.env.Members[i].GRPCAddr, f.env.AdminTLS(t, name, role))
}

// nodeConn connects to member i with a node certificate of the cluster CA.
func (f *fixture) nodeConn(t *testing.T, i int) *grpc.ClientConn {
	t.Helper()
	cfg, err := f.env.InternalCA.IssueNode(f.env.CADir, t.TempDir(), "node9", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return dialWith(t, f.env.Members[i].GRPCAddr, cfg)
}

func dialWith(t *testing.T, addr string, cfg cluster.TLSConfig) *grpc.ClientConn {
	t.Helper()
	creds, err := cluster.LoadCredentials(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(credentials.NewTLS(creds.ClientConfig())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// issue signs a leaf for names under the default SubCA of chainID on member
// i, which must hold the SubCA key.
func (f *fixture) issue(t *testing.T, i int, chainID string, names ...string) *fsm.Credential {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := f.env.Members[i].Issuer.Issue(ctx(t), &ca.Request{ChainID: chainID, CSR: csr})
	if err != nil {
		t.Fatalf("issue %v on %s: %v", names, chainID, err)
	}
	return issued.Credential
}

// auditTypes returns the command types of the audit events of actor, as
// the state holds them after every acknowledged write.
func (f *fixture) auditTypes(t *testing.T, actor string) []string {
	t.Helper()
	var out []string
	m := f.env.Members[0]
	if err := m.Cluster.LinearizableRead(ctx(t)); err != nil {
		t.Fatal(err)
	}
	err := m.State().View(func(tx *fsm.Tx) error {
		events, err := tx.AuditEvents(0, actor, 10000)
		for _, e := range events {
			out = append(out, string(e.Type))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// wantCode fails unless err is a gRPC status with code and, when given, a
// message that contains msg.
func wantCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
	if msg != "" && !strings.Contains(st.Message(), msg) {
		t.Fatalf("message %q does not contain %q", st.Message(), msg)
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// runPublishers runs a CRL publisher on every member; the leader's signs.
func (f *fixture) runPublishers(t *testing.T) {
	t.Helper()
	c, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, m := range f.env.Members {
		pub := crl.NewPublisher(m.State(), m.Cluster, m.HSM, slog.New(slog.DiscardHandler),
			crl.PublisherOptions{IsLeader: m.Cluster.IsLeader, Debounce: 50 * time.Millisecond,
				Interval: time.Second})
		wg.Add(1)
		go func() { defer wg.Done(); _ = pub.Run(c) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
