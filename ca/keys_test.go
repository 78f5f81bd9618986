package ca_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"anchor/ca"
	"anchor/cluster"
	"anchor/fsm"
	"anchor/hsm"
	"anchor/internal/freeport"
	softhsmtest "anchor/softhsm-test"
)

// keyCluster is a cluster of real Raft members with SoftHSM2 tokens and KeyManagers,
// built here instead of with testenv so that a member can join after the chain exists.
type keyCluster struct {
	t        *testing.T
	caDir    string
	internal *cluster.InternalCA
	tokens   []*softhsmtest.Token
	peers    []cluster.Peer
	nodes    []*keyNode
	logs     *syncBuffer
}

// keyNode is one member of a keyCluster.
type keyNode struct {
	id      string
	cluster *cluster.Node
	hsm     *hsm.HSM
	keys    *ca.KeyManager
	stop    func() // stops the member; safe to call twice
}

// newKeyCluster creates tokens for total nodes (node1, node2, ...) in one SoftHSM2
// configuration and the cluster's internal CA; it starts no node. With shared set,
// every node opens the token of node1 with hsm.Config.Shared.
func newKeyCluster(t *testing.T, total int, shared bool) *keyCluster {
	t.Helper()
	first, err := softhsmtest.NewToken(filepath.Join(t.TempDir(), "hsm"), "node1")
	if err != nil {
		t.Fatalf("NewToken: %v", err)
	}
	t.Setenv(softhsmtest.ConfigEnv, first.ConfigPath)
	c := &keyCluster{t: t, caDir: t.TempDir(), tokens: []*softhsmtest.Token{first},
		logs: &syncBuffer{}}
	for i := 2; i <= total; i++ {
		token := first
		if !shared {
			if token, err = first.AddToken(fmt.Sprintf("node%d", i)); err != nil {
				t.Fatalf("AddToken: %v", err)
			}
		}
		c.tokens = append(c.tokens, token)
	}
	if c.internal, err = cluster.CreateInternalCA(c.caDir, "keys-test"); err != nil {
		t.Fatalf("CreateInternalCA: %v", err)
	}
	return c
}

// bootstrap starts the first n nodes as the initial voters.
func (c *keyCluster) bootstrap(n int, shared bool) {
	c.t.Helper()
	listeners := make([]net.Listener, n)
	for i := range n {
		listeners[i] = c.reservePeer(i + 1)
	}
	for i := range n {
		c.start(i, i, listeners[i], c.peers, shared)
	}
}

// reservePeer picks loopback addresses for node number i and returns its gRPC listener.
func (c *keyCluster) reservePeer(i int) net.Listener {
	c.t.Helper()
	raftAddr, err := freeport.Addr("127.0.0.1")
	if err != nil {
		c.t.Fatal(err)
	}
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	c.peers = append(c.peers, cluster.Peer{ID: fmt.Sprintf("node%d", i), RaftAddr: raftAddr,
		GRPCAddr: grpcLis.Addr().String()})
	return grpcLis
}

// start starts the member of peer i (0-based) with token tokenIndex and the given
// initial voters (nil to join later), in a fresh data directory, and runs its
// KeyManager.
func (c *keyCluster) start(i, tokenIndex int, lis net.Listener, voters []cluster.Peer,
	shared bool) *keyNode {
	t := c.t
	t.Helper()
	peer := c.peers[i]
	logger := slog.New(slog.NewTextHandler(c.logs, nil)).With("node", peer.ID)
	tlsCfg, err := c.internal.IssueNode(c.caDir, t.TempDir(), peer.ID, []string{"127.0.0.1"})
	if err != nil {
		t.Fatalf("IssueNode: %v", err)
	}
	creds, err := cluster.LoadCredentials(tlsCfg)
	if err != nil {
		t.Fatalf("LoadCredentials: %v", err)
	}
	hsmCfg := c.tokens[tokenIndex].HSMConfig()
	hsmCfg.Shared = shared
	h, err := hsm.Open(hsmCfg, logger)
	if err != nil {
		t.Fatalf("open HSM of %s: %v", peer.ID, err)
	}
	node, err := cluster.Start(cluster.Config{
		NodeID: peer.ID, DataDir: filepath.Join(t.TempDir(), peer.ID), RaftAddr: peer.RaftAddr,
		GRPCAddr: peer.GRPCAddr, Peers: voters, Credentials: creds,
	}, logger)
	if err != nil {
		t.Fatalf("start %s: %v", peer.ID, err)
	}
	srv := grpc.NewServer(grpc.Creds(node.GRPCServerCredentials()))
	node.RegisterServices(srv)
	go srv.Serve(lis)

	ctx, cancel := context.WithCancel(context.Background())
	n := &keyNode{id: peer.ID, cluster: node, hsm: h,
		keys: ca.NewKeyManager(node.State(), node, h, peer.ID, node.IsLeader, logger)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rec := fsm.Node{RaftAddr: peer.RaftAddr, GRPCAddr: peer.GRPCAddr}
		if err := n.keys.Register(ctx, rec); err == nil {
			n.keys.Run(ctx)
		}
	}()
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			srv.Stop()
			_ = node.Shutdown()
			_ = h.Close()
		})
	}
	t.Cleanup(n.stop)
	c.nodes = append(c.nodes, n)
	return n
}

// createChain creates org/realm and a chain on node 0 once every started node has
// registered.
func (c *keyCluster) createChain(rootAlg hsm.Algorithm) *fsm.Chain {
	c.t.Helper()
	c.waitRegistered(len(c.nodes))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := c.nodes[0]
	for _, cmd := range []*fsm.Command{
		fsm.MustCommand(fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: "org"}),
		fsm.MustCommand(fsm.CmdCreateRealm, fsm.CreateRealm{Org: "org", Name: "realm"}),
	} {
		res, err := n.cluster.Apply(ctx, cmd)
		if err == nil {
			err = res.Decode(nil)
		}
		if err != nil {
			c.t.Fatalf("apply %s: %v", cmd.Type, err)
		}
	}
	chain, err := ca.CreateChain(ctx, n.cluster, n.hsm, n.id, ca.ChainRequest{
		Org: "org", Realm: "realm", Name: "chain", RootAlgorithm: rootAlg,
		URLs: ca.URLs{"http://anchor.test"},
	})
	if err != nil {
		c.t.Fatalf("CreateChain: %v", err)
	}
	return chain
}

func (c *keyCluster) waitRegistered(n int) {
	c.t.Helper()
	c.waitFor(30*time.Second, func(tx *fsm.Tx) error {
		nodes, err := tx.Nodes()
		if err == nil && len(nodes) < n {
			err = fmt.Errorf("%d of %d nodes registered", len(nodes), n)
		}
		return err
	})
}

// waitHolders waits until every key of the cluster lists nodeIDs among its holders.
func (c *keyCluster) waitHolders(nodeIDs ...string) {
	c.t.Helper()
	c.waitFor(60*time.Second, func(tx *fsm.Tx) error {
		keys, err := tx.Keys()
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return fmt.Errorf("no keys yet")
		}
		for _, k := range keys {
			for _, id := range nodeIDs {
				if !ca.HoldsKey(tx, k.ID, id) {
					return fmt.Errorf("%s does not hold key %s (holders %v)", id, k.ID, k.Holders)
				}
			}
		}
		return nil
	})
}

// waitFor polls cond on node 0's state until it returns nil or timeout passes.
func (c *keyCluster) waitFor(timeout time.Duration, cond func(*fsm.Tx) error) {
	c.t.Helper()
	c.waitOn(c.nodes[0], timeout, cond)
}

// waitOn polls cond on node n's state until it returns nil or timeout passes.
func (c *keyCluster) waitOn(n *keyNode, timeout time.Duration, cond func(*fsm.Tx) error) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := n.cluster.State().View(cond)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%v after %s; logs:\n%s", err, timeout, c.logs.tail(60))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// chainCAs reads the root and default SubCA of chain from node n's state.
func chainCAs(t *testing.T, n *keyNode, chain *fsm.Chain) (root, sub *fsm.CA) {
	t.Helper()
	err := n.cluster.State().View(func(tx *fsm.Tx) error {
		var err error
		if root, err = tx.CA(chain.RootCAID); err != nil {
			return err
		}
		sub, err = tx.CA(chain.DefaultSubCAID)
		return err
	})
	if err != nil {
		t.Fatalf("read chain on %s: %v", n.id, err)
	}
	return root, sub
}

// signLeaf signs a leaf certificate with signer as the SubCA and verifies that it
// chains to the root.
func signLeaf(t *testing.T, signer crypto.Signer, root, sub *fsm.CA) {
	t.Helper()
	rootCert, err := root.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	subCert, err := sub.Certificate()
	if err != nil {
		t.Fatal(err)
	}

	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "leaf.example.test"},
		DNSNames:  []string{"leaf.example.test"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, subCert, &leafKey.PublicKey, signer)
	if err != nil {
		t.Fatalf("sign leaf with the SubCA key: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}

	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(rootCert)
	intermediates.AddCert(subCert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates,
		DNSName: "leaf.example.test"}); err != nil {
		t.Fatalf("leaf signed with the received key does not verify: %v", err)
	}
}

// TestKeyManager_LateJoinerReceivesEveryKey adds a fourth member with a fresh token to
// a cluster whose chain exists already. It must receive every CA key, prove possession
// of each, and sign.
func TestKeyManager_LateJoinerReceivesEveryKey(t *testing.T) {
	c := newKeyCluster(t, 4, false)
	c.bootstrap(3, false)
	chain := c.createChain(hsm.ECDSAP384)
	c.waitHolders("node1", "node2", "node3")

	lis := c.reservePeer(4)
	late := c.start(3, 3, lis, nil, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := late.cluster.JoinCluster(ctx, []string{c.peers[1].GRPCAddr}, false); err != nil {
		t.Fatalf("JoinCluster: %v", err)
	}
	c.waitHolders("node4")

	root, sub := chainCAs(t, late, chain)
	for _, keyID := range []string{root.KeyID, sub.KeyID} {
		if !late.hsm.HasKey(keyID) {
			t.Errorf("node4's token lacks key %s", keyID)
		}
	}
	c.waitOn(late, 10*time.Second, func(tx *fsm.Tx) error {
		if !ca.HoldsKey(tx, sub.KeyID, "node4") {
			return fmt.Errorf("HoldsKey(SubCA key, node4) = false on node4's own state")
		}
		return nil
	})
	signer, err := late.hsm.Signer(sub.KeyID)
	if err != nil {
		t.Fatalf("Signer on node4: %v", err)
	}
	signLeaf(t, signer, root, sub)
}

// TestKeyManager_SharedTokenConfirmsWithoutWrapping runs two nodes on one token with
// hsm.Config.Shared: both prove possession of every key and no key is wrapped.
func TestKeyManager_SharedTokenConfirmsWithoutWrapping(t *testing.T) {
	c := newKeyCluster(t, 2, true)
	c.bootstrap(2, true)
	chain := c.createChain(hsm.Ed25519)
	c.waitHolders("node1", "node2")

	err := c.nodes[1].cluster.State().View(func(tx *fsm.Tx) error {
		nodes, err := tx.Nodes()
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if len(n.TransportKey) != 0 {
				t.Errorf("node %s published a transport key on a shared token", n.ID)
			}
		}
		keys, err := tx.Keys()
		if err != nil {
			return err
		}
		for _, k := range keys {
			for _, n := range nodes {
				if _, err := tx.KeyShare(k.ID, n.ID); err == nil {
					t.Errorf("key %s was wrapped for %s on a shared token", k.ID, n.ID)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	root, sub := chainCAs(t, c.nodes[1], chain)
	rootSigner, err := c.nodes[1].hsm.Signer(root.KeyID)
	if err != nil {
		t.Fatalf("Signer for the Ed25519 root on node2: %v", err)
	}
	signLeaf(t, rootSigner, root, root) // the root signs directly under itself
	subSigner, err := c.nodes[1].hsm.Signer(sub.KeyID)
	if err != nil {
		t.Fatalf("Signer for the SubCA on node2: %v", err)
	}
	signLeaf(t, subSigner, root, sub)
}

// TestKeyManager_UnwrappableKeyStaysWithOrigin creates a chain with an Ed25519 root on
// per-node SoftHSM2 2.6.1 tokens, which cannot wrap Ed25519 keys: the SubCA key reaches
// every node, the root key stays a key of node1 only, and the failure is logged once.
func TestKeyManager_UnwrappableKeyStaysWithOrigin(t *testing.T) {
	c := newKeyCluster(t, 2, false)
	c.bootstrap(2, false)
	chain := c.createChain(hsm.Ed25519)
	root, sub := chainCAs(t, c.nodes[0], chain)

	c.waitFor(60*time.Second, func(tx *fsm.Tx) error {
		if !ca.HoldsKey(tx, sub.KeyID, "node2") {
			return fmt.Errorf("node2 does not hold the SubCA key yet")
		}
		if !strings.Contains(c.logs.String(), "CA key cannot leave this HSM") {
			return fmt.Errorf("the unwrappable root key was not reported yet")
		}
		return nil
	})

	var rootOnNode1, rootOnNode2, unknownKey bool
	err := c.nodes[0].cluster.State().View(func(tx *fsm.Tx) error {
		rootOnNode1 = ca.HoldsKey(tx, root.KeyID, "node1")
		rootOnNode2 = ca.HoldsKey(tx, root.KeyID, "node2")
		unknownKey = ca.HoldsKey(tx, "no-such-key", "node1")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rootOnNode1 {
		t.Error("HoldsKey(root, node1) = false for the key's origin")
	}
	if rootOnNode2 {
		t.Error("HoldsKey(root, node2) = true although the token cannot wrap Ed25519 keys")
	}
	if unknownKey {
		t.Error("HoldsKey of an unknown key = true")
	}
	if n := strings.Count(c.logs.String(), "CA key cannot leave this HSM"); n != 1 {
		t.Errorf("the unwrappable key was reported %d times, want once", n)
	}

	node2 := c.nodes[1]
	c.waitOn(node2, 10*time.Second, func(tx *fsm.Tx) error {
		if !ca.HoldsKey(tx, sub.KeyID, "node2") {
			return fmt.Errorf("node2 has not applied its own proof yet")
		}
		return nil
	})
	_, err = ca.HeldSigner(node2.cluster.State(), node2.hsm, "node2", root.KeyID)
	if fsm.CodeOf(err) != fsm.CodeUnavailable {
		t.Errorf("HeldSigner for the root on node2: error %v, want CodeUnavailable", err)
	}
	if _, err := ca.HeldSigner(node2.cluster.State(), node2.hsm, "node2", sub.KeyID); err != nil {
		t.Errorf("HeldSigner for the SubCA on node2: %v", err)
	}
}

// TestKeyManager_ReplacedTokenReceivesKeysAgain restarts a member with the same ID and
// addresses but a fresh token and data directory, as after replacing a failed machine.
// Its earlier proofs and shares were for the old token, so it must receive every key
// again.
func TestKeyManager_ReplacedTokenReceivesKeysAgain(t *testing.T) {
	c := newKeyCluster(t, 4, false)
	c.bootstrap(3, false)
	c.createChain(hsm.ECDSAP256)
	c.waitHolders("node1", "node2", "node3")

	old := c.nodes[2]
	old.stop()
	lis, err := net.Listen("tcp", c.peers[2].GRPCAddr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", c.peers[2].GRPCAddr, err)
	}
	replaced := c.start(2, 3, lis, nil, false) // token index 3 is fresh

	c.waitFor(60*time.Second, func(tx *fsm.Tx) error {
		keys, err := tx.Keys()
		if err != nil {
			return err
		}
		for _, k := range keys {
			if !replaced.hsm.HasKey(k.ID) {
				return fmt.Errorf("the new token of node3 lacks key %s", k.ID)
			}
			if !ca.HoldsKey(tx, k.ID, "node3") {
				return fmt.Errorf("node3 has not proved possession of key %s again", k.ID)
			}
		}
		return nil
	})
}

// syncBuffer collects the log output of all nodes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns the last n lines, for failure messages.
func (b *syncBuffer) tail(n int) string {
	lines := strings.Split(b.String(), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// A restored snapshot brings the node records of the cluster it was saved
// from. Each node notices that its record differs and registers again.
func TestKeyManager_OverwrittenRecordRegisteredAgain(t *testing.T) {
	c := newKeyCluster(t, 3, false)
	c.bootstrap(3, false)
	c.waitRegistered(3)
	var before fsm.Node
	c.waitFor(10*time.Second, func(tx *fsm.Tx) error {
		nodes, err := tx.Nodes()
		for _, n := range nodes {
			if n.ID == "node2" {
				before = n
				return err
			}
		}
		return fmt.Errorf("node2 is not registered")
	})

	// What a restore of another cluster's snapshot leaves behind.
	// Loopback ports that nothing listens on stand for the other cluster's
	// addresses.
	staleRaft, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	staleGRPC, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	stale := fsm.Node{ID: "node2", RaftAddr: staleRaft, GRPCAddr: staleGRPC,
		TransportKey: []byte("another cluster's key")}
	res, err := c.nodes[0].cluster.Apply(context.Background(), fsm.MustCommand(fsm.CmdRegisterNode, stale))
	if err != nil || res.Err != nil {
		t.Fatalf("overwrite node2's record: %v %v", err, res.Err)
	}

	c.waitFor(30*time.Second, func(tx *fsm.Tx) error {
		nodes, err := tx.Nodes()
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.ID != "node2" {
				continue
			}
			if n.GRPCAddr != before.GRPCAddr || n.RaftAddr != before.RaftAddr ||
				!bytes.Equal(n.TransportKey, before.TransportKey) {
				return fmt.Errorf("node2's record is %s/%s, want %s/%s with its own transport key",
					n.RaftAddr, n.GRPCAddr, before.RaftAddr, before.GRPCAddr)
			}
			return nil
		}
		return fmt.Errorf("node2's record is gone")
	})
}

// TestKeyManager_RetiredKeyDestroyedEverywhere records a key that no CA
// uses, two days old, waits until every node's HSM holds it, and retires
// it. Every node must destroy its copy.
func TestKeyManager_RetiredKeyDestroyedEverywhere(t *testing.T) {
	c := newKeyCluster(t, 3, false)
	c.bootstrap(3, false)
	c.waitRegistered(3)
	n := c.nodes[0]
	signer, err := n.hsm.GenerateKey("ocsp-retired", hsm.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	apply := func(cmd *fsm.Command) {
		t.Helper()
		res, err := n.cluster.Apply(ctx, cmd)
		if err == nil {
			err = res.Decode(nil)
		}
		if err != nil {
			t.Fatalf("apply %s: %v", cmd.Type, err)
		}
	}
	create := fsm.MustCommand(fsm.CmdCreateKey, fsm.Key{
		ID: "ocsp-retired", Algorithm: string(hsm.ECDSAP256), PublicKey: pub, Origin: n.id,
	})
	create.Time = create.Time.Add(-48 * time.Hour)
	apply(create)
	c.waitHolders("node1", "node2", "node3")
	for _, node := range c.nodes {
		if !node.hsm.HasKey("ocsp-retired") {
			t.Fatalf("%s's token lacks the key before it is retired", node.id)
		}
	}

	apply(fsm.MustCommand(fsm.CmdRetireKey, fsm.RetireKey{KeyID: "ocsp-retired"}))
	deadline := time.Now().Add(30 * time.Second)
	for _, node := range c.nodes {
		for node.hsm.HasKey("ocsp-retired") {
			if time.Now().After(deadline) {
				t.Fatalf("%s's token still has the retired key; logs:\n%s", node.id, c.logs.tail(40))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if n := strings.Count(c.logs.String(), "retired key destroyed"); n != 3 {
		t.Errorf("%d nodes logged the destruction, want 3", n)
	}
}
