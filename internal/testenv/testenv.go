// Package testenv starts in-process clusters for tests: real Raft members on
// loopback with gRPC forwarding and the admin API behind mutual TLS, one
// real SoftHSM2 token per node, and a bootstrapped chain with an EAB key.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"

	"anchor/api"
	"anchor/ca"
	"anchor/cluster"
	"anchor/fsm"
	"anchor/hsm"
	"anchor/internal/freeport"
	softhsmtest "anchor/softhsm-test"
)

// Bootstrap names of the test chain.
const (
	Org   = "default"
	Realm = "default"
	Chain = "default"
)

// Member is one in-process node.
type Member struct {
	Cluster *cluster.Node
	HSM     *hsm.HSM
	Issuer  *ca.Issuer
	Keys    *ca.KeyManager
	// GRPCAddr is the member's gRPC address, which serves the internal,
	// cluster and admin services.
	GRPCAddr string
	grpc     *grpc.Server
	cancel   context.CancelFunc
	keysDone chan struct{} // closed when the key manager has stopped
}

// Apply commits a command through this member (forwarded to the leader).
func (m *Member) Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	return m.Cluster.Apply(ctx, cmd)
}

// State returns the member's replicated state.
func (m *Member) State() *fsm.FSM { return m.Cluster.State() }

// Env is a running test cluster with a bootstrapped chain.
type Env struct {
	Members []*Member
	ChainID string
	Root    *x509.Certificate
	SubCA   *x509.Certificate
	// EAB is the chain's EAB key, HMAC key included.
	EAB fsm.EABKey
	// URLs are the base URLs written into certificates (nothing listens).
	URLs ca.URLs
	// InternalCA issues the members' node certificates and, through
	// AdminTLS, admin certificates; its files are in CADir.
	InternalCA *cluster.InternalCA
	CADir      string
}

// AdminTLS issues an admin client certificate with a role
// (cluster.RoleClusterAdmin, cluster.RoleReadOnly or "org-admin/" and an
// organization) and returns its files.
func (e *Env) AdminTLS(t testing.TB, name, role string) cluster.TLSConfig {
	t.Helper()
	cfg, err := e.InternalCA.IssueAdmin(e.CADir, t.TempDir(), name, role)
	if err != nil {
		t.Fatalf("issue admin certificate for %s: %v", name, err)
	}
	return cfg
}

// Options adjust New.
type Options struct {
	// EABIdentifiers pre-authorizes the EAB key for these names.
	EABIdentifiers []string
	// Logger receives the nodes' logs; default discards them.
	Logger *slog.Logger
}

// New starts n members, creates the default chain on member 0, and waits
// until every member holds every CA key. Cleanup stops everything.
func New(t testing.TB, n int, opts Options) *Env {
	t.Helper()
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tokens := newTokens(t, n)
	peers, listeners := reservePeers(t, n)
	caDir := t.TempDir()
	internal, err := cluster.CreateInternalCA(caDir, "test")
	if err != nil {
		t.Fatalf("create internal CA: %v", err)
	}
	env := &Env{
		ChainID: fsm.ChainID(Org, Realm, Chain), URLs: ca.URLs{"http://anchor.test"},
		InternalCA: internal, CADir: caDir,
	}
	for i := range n {
		tlsCfg, err := internal.IssueNode(caDir, t.TempDir(), peers[i].ID, []string{"127.0.0.1"})
		if err != nil {
			t.Fatalf("issue node certificate: %v", err)
		}
		creds, err := cluster.LoadCredentials(tlsCfg)
		if err != nil {
			t.Fatalf("load node credentials: %v", err)
		}
		m := startMember(t, peers, i, listeners[i], tokens[i], creds, env.URLs,
			logger.With("node", peers[i].ID))
		env.Members = append(env.Members, m)
	}
	env.bootstrap(t, opts)
	env.WaitKeysEverywhere(t)
	return env
}

func newTokens(t testing.TB, n int) []*softhsmtest.Token {
	t.Helper()
	first, err := softhsmtest.NewToken(filepath.Join(t.TempDir(), "hsm"), "node1")
	if err != nil {
		t.Fatalf("create SoftHSM2 token: %v", err)
	}
	// SoftHSM2 reads one configuration per process, so all tokens share it.
	t.Setenv(softhsmtest.ConfigEnv, first.ConfigPath)
	tokens := []*softhsmtest.Token{first}
	for i := 2; i <= n; i++ {
		tok, err := first.AddToken("node" + strconv.Itoa(i))
		if err != nil {
			t.Fatalf("create SoftHSM2 token: %v", err)
		}
		tokens = append(tokens, tok)
	}
	return tokens
}

func reservePeers(t testing.TB, n int) ([]cluster.Peer, []net.Listener) {
	t.Helper()
	var peers []cluster.Peer
	var lis []net.Listener
	for i := range n {
		raftAddr, err := freeport.Addr("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		g, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lis = append(lis, g)
		peers = append(peers, cluster.Peer{
			ID: "node" + strconv.Itoa(i+1), RaftAddr: raftAddr, GRPCAddr: g.Addr().String(),
		})
	}
	return peers, lis
}

func startMember(t testing.TB, peers []cluster.Peer, i int, lis net.Listener,
	tok *softhsmtest.Token, creds *cluster.Credentials, urls ca.URLs, logger *slog.Logger) *Member {
	t.Helper()
	h, err := hsm.Open(tok.HSMConfig(), logger)
	if err != nil {
		t.Fatalf("open HSM of %s: %v", peers[i].ID, err)
	}
	node, err := cluster.Start(cluster.Config{
		NodeID: peers[i].ID, DataDir: filepath.Join(t.TempDir(), peers[i].ID),
		RaftAddr: peers[i].RaftAddr, GRPCAddr: peers[i].GRPCAddr, Peers: peers,
		Credentials: creds,
	}, logger)
	if err != nil {
		t.Fatalf("start %s: %v", peers[i].ID, err)
	}
	srv := grpc.NewServer(grpc.Creds(node.GRPCServerCredentials()))
	node.RegisterServices(srv)
	api.NewServer(node, h, urls, logger).Register(srv)
	go srv.Serve(lis)
	ctx, cancel := context.WithCancel(context.Background())
	m := &Member{
		Cluster: node, HSM: h, GRPCAddr: peers[i].GRPCAddr, grpc: srv, cancel: cancel,
		keysDone: make(chan struct{}),
		Issuer:   ca.NewIssuer(node.State(), node, h, peers[i].ID, logger),
		Keys:     ca.NewKeyManager(node.State(), node, h, peers[i].ID, node.IsLeader, logger),
	}
	go func() {
		defer close(m.keysDone)
		if err := m.Keys.Register(ctx, fsm.Node{RaftAddr: peers[i].RaftAddr, GRPCAddr: peers[i].GRPCAddr}); err == nil {
			m.Keys.Run(ctx)
		}
	}()
	t.Cleanup(m.Stop)
	return m
}

// Stop stops the member. It is safe to call twice. The key manager stops
// before the HSM closes, so no PKCS#11 call of this member outlives it.
func (m *Member) Stop() {
	m.cancel()
	<-m.keysDone
	m.grpc.Stop()
	_ = m.Cluster.Shutdown()
	_ = m.HSM.Close()
}

func (e *Env) bootstrap(t testing.TB, opts Options) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := e.Members[0]
	e.WaitRegistered(t)
	mustApply(t, ctx, m, fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: Org}, nil)
	mustApply(t, ctx, m, fsm.CmdCreateRealm, fsm.CreateRealm{Org: Org, Name: Realm}, nil)
	chain, err := ca.CreateChain(ctx, m.Cluster, m.HSM, m.Cluster.ID(), ca.ChainRequest{
		Org: Org, Realm: Realm, Name: Chain, URLs: e.URLs,
	})
	if err != nil {
		t.Fatalf("create chain: %v", err)
	}
	_ = m.State().View(func(tx *fsm.Tx) error {
		root, _ := tx.CA(chain.RootCAID)
		sub, _ := tx.CA(chain.DefaultSubCAID)
		e.Root, _ = root.Certificate()
		e.SubCA, _ = sub.Certificate()
		return nil
	})
	hmacKey := make([]byte, 32)
	_, _ = rand.Read(hmacKey)
	e.EAB = fsm.EABKey{KeyID: "kid-test", HMACKey: hmacKey, ChainID: e.ChainID, Identifiers: opts.EABIdentifiers}
	mustApply(t, ctx, m, fsm.CmdCreateEAB, e.EAB, nil)
}

// WaitRegistered waits until every member has registered its node record.
func (e *Env) WaitRegistered(t testing.TB) {
	t.Helper()
	e.waitFor(t, 30*time.Second, func() error {
		return e.Members[0].State().View(func(tx *fsm.Tx) error {
			nodes, err := tx.Nodes()
			if err != nil {
				return err
			}
			if len(nodes) != len(e.Members) {
				return fmt.Errorf("%d of %d nodes registered", len(nodes), len(e.Members))
			}
			return nil
		})
	})
}

// WaitKeysEverywhere waits until every member's own state records every
// member as a holder of every key, so that each member's issuer, which reads
// its local state, may sign.
func (e *Env) WaitKeysEverywhere(t testing.TB) {
	t.Helper()
	e.waitFor(t, 60*time.Second, func() error {
		for _, viewer := range e.Members {
			err := viewer.State().View(func(tx *fsm.Tx) error {
				keys, err := tx.Keys()
				if err != nil {
					return err
				}
				for _, k := range keys {
					for _, m := range e.Members {
						if !slices.Contains(k.Holders, m.Cluster.ID()) {
							return fmt.Errorf("%s does not yet record %s as holder of key %s",
								viewer.Cluster.ID(), m.Cluster.ID(), k.ID)
						}
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *Env) waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("test cluster: %v after %s", err, timeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func mustApply(t testing.TB, ctx context.Context, m *Member, typ fsm.CommandType, payload, out any) {
	t.Helper()
	res, err := m.Apply(ctx, fsm.MustCommand(typ, payload))
	if err == nil {
		err = res.Decode(out)
	}
	if err != nil {
		t.Fatalf("apply %s: %v", typ, err)
	}
}
