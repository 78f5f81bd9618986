package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	anchorv1 "anchor/api/anchorv1"
	"anchor/fsm"
	"anchor/internal/freeport"
)

type testNode struct {
	*Node
	grpc *grpc.Server
}

// startCluster starts n in-process nodes with real raft-boltdb stores, TCP
// transports and gRPC forwarding on loopback.
func startCluster(t *testing.T, n int) []*testNode {
	t.Helper()
	caDir := t.TempDir()
	internal, err := CreateInternalCA(caDir, "test")
	if err != nil {
		t.Fatal(err)
	}
	return startClusterWithCA(t, n, internal, caDir)
}

func startClusterWithCA(t *testing.T, n int, internal *InternalCA, caDir string,
	adjust ...func(*Config)) []*testNode {
	t.Helper()
	var lis []net.Listener
	var peers []Peer
	for i := 0; i < n; i++ {
		raftAddr, err := freeport.Addr("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lis = append(lis, grpcLis)
		peers = append(peers, Peer{ID: "n" + strconv.Itoa(i+1), RaftAddr: raftAddr, GRPCAddr: grpcLis.Addr().String()})
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var nodes []*testNode
	for i, p := range peers {
		cfg := Config{
			NodeID: p.ID, DataDir: filepath.Join(t.TempDir(), p.ID),
			RaftAddr: p.RaftAddr, GRPCAddr: p.GRPCAddr, Peers: peers,
			ApplyTimeout: 5 * time.Second,
			Credentials:  nodeCredentials(t, internal, caDir, p.ID),
		}
		for _, f := range adjust {
			f(&cfg)
		}
		node, err := Start(cfg, logger.With("node", p.ID))
		if err != nil {
			t.Fatalf("start %s: %v", p.ID, err)
		}
		srv := grpc.NewServer(grpc.Creds(node.GRPCServerCredentials()))
		node.RegisterServices(srv)
		go srv.Serve(lis[i])
		tn := &testNode{Node: node, grpc: srv}
		nodes = append(nodes, tn)
		t.Cleanup(func() { tn.stop() })
	}
	return nodes
}

func nodeCredentials(t *testing.T, ca *InternalCA, caDir, id string) *Credentials {
	t.Helper()
	cfg, err := ca.IssueNode(caDir, t.TempDir(), id, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := LoadCredentials(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

func (n *testNode) stop() {
	n.grpc.Stop()
	_ = n.Shutdown()
}

func createOrg(ctx context.Context, n *Node, name string) error {
	res, err := n.Apply(ctx, fsm.MustCommand(fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: name}))
	if err != nil {
		return err
	}
	return res.Decode(nil)
}

func waitFor(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leaderOf(t *testing.T, nodes []*testNode) int {
	t.Helper()
	return waitLeader(t, nodes, 10*time.Second)
}

// waitLeader returns the index of the leader among nodes, waiting up to
// timeout for one.
func waitLeader(t *testing.T, nodes []*testNode, timeout time.Duration) int {
	t.Helper()
	idx := -1
	waitFor(t, timeout, func() error {
		for i, n := range nodes {
			if n.raft != nil && n.IsLeader() {
				idx = i
				return nil
			}
		}
		return errors.New("no leader")
	})
	return idx
}

func hasOrg(n *Node, name string) error {
	return n.State().View(func(tx *fsm.Tx) error {
		_, err := tx.Organization(name)
		return err
	})
}

func TestApply_FollowerForwardsToLeader(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := leaderOf(t, nodes)
	follower := nodes[(leader+1)%3]
	ctx := context.Background()

	if err := createOrg(ctx, follower.Node, "acme-corp"); err != nil {
		t.Fatalf("apply through follower: %v", err)
	}
	for _, n := range nodes {
		waitFor(t, 5*time.Second, func() error { return hasOrg(n.Node, "acme-corp") })
	}
	// The domain error of the second create comes back through forwarding.
	err := createOrg(ctx, follower.Node, "acme-corp")
	if fsm.CodeOf(err) != fsm.CodeAlreadyExists {
		t.Fatalf("duplicate create through follower: got %v, want already_exists", err)
	}
}

// A proposer that lost its leader sends the same command again. Whichever
// node the copy goes through, it returns the first copy's result, and the
// state changes once.
func TestApply_RetriedCommandCommitsOnce(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := leaderOf(t, nodes)
	follower := nodes[(leader+1)%3]
	ctx := context.Background()
	cmd := fsm.MustCommand(fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: "once"}).WithActor("admin:alice")
	cmd.RequestID = fsm.NewRequestID()

	first, err := nodes[leader].Apply(ctx, cmd)
	if err != nil || first.Err != nil {
		t.Fatalf("first copy: %v %v", err, first.Err)
	}
	second, err := follower.Apply(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if second.Err != nil || string(second.Data) != string(first.Data) {
		t.Fatalf("second copy returned %s %v, want the first copy's %s", second.Data, second.Err, first.Data)
	}

	for _, n := range nodes {
		waitFor(t, 5*time.Second, func() error {
			return n.State().View(func(tx *fsm.Tx) error {
				evs, err := tx.AuditEvents(0, "admin:alice", 10)
				if err != nil {
					return err
				}
				if len(evs) != 1 {
					return fmt.Errorf("node %s holds %d audit events for the request, want 1", n.ID(), len(evs))
				}
				return nil
			})
		})
	}
}

// A restored snapshot of another cluster brings that cluster's member
// addresses. Followers still reach the leader, and every node records its
// own addresses again.
func TestApply_StaleMemberRecordsRepaired(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := leaderOf(t, nodes)
	ctx := context.Background()
	for _, n := range nodes {
		// Loopback ports that nothing listens on stand for the other
		// cluster's addresses.
		stale := fsm.ClusterMember{ID: n.ID(), RaftAddr: freeAddr(t), GRPCAddr: freeAddr(t)}
		res, err := nodes[leader].Apply(ctx, fsm.MustCommand(fsm.CmdSetClusterMember, stale))
		if err != nil || res.Err != nil {
			t.Fatalf("overwrite the record of %s: %v %v", n.ID(), err, res.Err)
		}
	}
	follower := nodes[(leader+1)%3]
	if err := createOrg(ctx, follower.Node, "after-stale-records"); err != nil {
		t.Fatalf("write through a follower with stale records: %v", err)
	}
	for _, n := range nodes {
		waitFor(t, 15*time.Second, func() error {
			return nodes[leader].State().View(func(tx *fsm.Tx) error {
				rec, err := tx.ClusterMember(n.ID())
				if err != nil {
					return err
				}
				if rec.RaftAddr != n.cfg.RaftAddr || rec.GRPCAddr != n.cfg.GRPCAddr {
					return fmt.Errorf("record of %s is %s/%s, want %s/%s", n.ID(), rec.RaftAddr,
						rec.GRPCAddr, n.cfg.RaftAddr, n.cfg.GRPCAddr)
				}
				return nil
			})
		})
	}
}

func TestApply_LeaderKilledAcknowledgedWritesKept(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx := context.Background()
	var acked []string
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("before-%d", i)
		if err := createOrg(ctx, nodes[i%3].Node, name); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
		acked = append(acked, name)
	}
	old := leaderOf(t, nodes)
	nodes[old].stop()
	var alive []*testNode
	for i, n := range nodes {
		if i != old {
			alive = append(alive, n)
		}
	}
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("after-%d", i)
		if err := createOrg(ctx, alive[i%2].Node, name); err != nil {
			t.Fatalf("write %s after leader loss: %v", name, err)
		}
		acked = append(acked, name)
	}
	for _, n := range alive {
		for _, name := range acked {
			waitFor(t, 5*time.Second, func() error { return hasOrg(n.Node, name) })
		}
	}
}

func TestApply_MinorityFailsQuicklyWithNoLeader(t *testing.T) {
	nodes := startCluster(t, 3)
	leaderOf(t, nodes)
	nodes[0].stop()
	nodes[1].stop()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	err := createOrg(ctx, nodes[2].Node, "lonely")
	if err == nil {
		t.Fatal("write on a node without quorum succeeded")
	}
	var nl *NoLeaderError
	if !errors.As(err, &nl) {
		t.Fatalf("write without quorum: got %v, want a no-leader error", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("write without quorum took %s", elapsed)
	}
	if hasOrg(nodes[2].Node, "lonely") == nil {
		t.Fatal("write without quorum was applied")
	}
}

func TestRestart_StateSurvivesAndCatchesUp(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx := context.Background()
	if err := createOrg(ctx, nodes[0].Node, "persisted"); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitFor(t, 5*time.Second, func() error { return hasOrg(n.Node, "persisted") })
	}
	// Stop a follower, write more, restart it from its data directory.
	leader := leaderOf(t, nodes)
	f := (leader + 1) % 3
	cfg := nodes[f].cfg
	nodes[f].stop()
	if err := createOrg(ctx, nodes[leader].Node, "while-down"); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	restarted, err := Start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	srv := grpc.NewServer(grpc.Creds(restarted.GRPCServerCredentials()))
	restarted.RegisterServices(srv)
	go srv.Serve(lis)
	t.Cleanup(func() { (&testNode{Node: restarted, grpc: srv}).stop() })
	if err := hasOrg(restarted, "persisted"); err != nil {
		t.Fatalf("state after restart: %v", err)
	}
	// The node must not report itself caught up before it has the write
	// committed while it was down.
	deadline := time.Now().Add(10 * time.Second)
	for !restarted.CaughtUp() {
		if time.Now().After(deadline) {
			t.Fatal("restarted node not caught up after 10s")
		}
		time.Sleep(time.Millisecond)
	}
	if err := hasOrg(restarted, "while-down"); err != nil {
		t.Fatalf("caught up without the write committed while down: %v", err)
	}
}

// callApply sends data to the Internal.Apply method at addr over from's
// client connection, as a forwarded write would reach the leader.
func callApply(ctx context.Context, from *Node, addr string, data []byte) (*anchorv1.ApplyResponse, error) {
	conn, err := from.conn(addr)
	if err != nil {
		return nil, err
	}
	return anchorv1.NewInternalClient(conn).Apply(ctx, &anchorv1.ApplyRequest{Command: data})
}

func TestTLS_ForeignNodeRejected(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := leaderOf(t, nodes)

	// A node with a certificate from another CA reaches the leader's gRPC
	// server, and its forwarded write is rejected during the handshake.
	otherDir := t.TempDir()
	other, err := CreateInternalCA(otherDir, "other")
	if err != nil {
		t.Fatal(err)
	}
	intruder := &Node{
		cfg:    Config{NodeID: "intruder", Credentials: nodeCredentials(t, other, otherDir, "intruder")},
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		conns:  map[string]*grpc.ClientConn{},
	}
	data, err := fsm.MustCommand(fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: "evil"}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := callApply(ctx, intruder, nodes[leader].cfg.GRPCAddr, data); err == nil {
		t.Fatal("forward with a foreign certificate succeeded")
	}
	if hasOrg(nodes[leader].Node, "evil") == nil {
		t.Fatal("write from a foreign node was applied")
	}
}

func TestTLS_AdminCertificateCannotApply(t *testing.T) {
	caDir := t.TempDir()
	internal, err := CreateInternalCA(caDir, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodes := startClusterWithCA(t, 3, internal, caDir)
	leader := leaderOf(t, nodes)
	adminCfg, err := internal.IssueAdmin(caDir, t.TempDir(), "alice", "cluster-admin")
	if err != nil {
		t.Fatal(err)
	}
	adminCreds, err := LoadCredentials(adminCfg)
	if err != nil {
		t.Fatal(err)
	}
	admin := &Node{
		cfg:    Config{NodeID: "alice", Credentials: adminCreds},
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		conns:  map[string]*grpc.ClientConn{},
	}
	data, err := fsm.MustCommand(fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: "sneaky"}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = callApply(ctx, admin, nodes[leader].cfg.GRPCAddr, data)
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Internal.Apply with an admin certificate: got %v, want PermissionDenied", err)
	}
}

func TestApply_ConcurrentWritesShareBatches(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := nodes[leaderOf(t, nodes)]
	before := leader.State().Stats()
	const writes = 300
	var wg sync.WaitGroup
	errs := make(chan error, writes)
	for i := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- createOrg(context.Background(), leader.Node, fmt.Sprintf("batch-%d", i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	after := leader.State().Stats()
	entries, batches := after.Entries-before.Entries, after.Batches-before.Batches
	if entries < writes {
		t.Fatalf("%d entries applied, want at least %d", entries, writes)
	}
	if batches >= entries {
		t.Fatalf("%d entries took %d transactions: concurrent writes did not share one", entries, batches)
	}
	t.Logf("%d entries in %d transactions", entries, batches)
}

// TestSnapshotSettings_CompactLog starts one node that snapshots every 50
// entries, checks every 50ms and keeps 10 entries after a snapshot. After
// 200 writes the log must be compacted and still keep 10 entries.
func TestSnapshotSettings_CompactLog(t *testing.T) {
	caDir := t.TempDir()
	internal, err := CreateInternalCA(caDir, "test")
	if err != nil {
		t.Fatal(err)
	}
	raftAddr, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	grpcAddr, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	peers := []Peer{{ID: "n1", RaftAddr: raftAddr, GRPCAddr: grpcAddr}}
	node, err := Start(Config{
		NodeID: "n1", DataDir: t.TempDir(), RaftAddr: raftAddr, GRPCAddr: grpcAddr, Peers: peers,
		Credentials:       nodeCredentials(t, internal, caDir, "n1"),
		SnapshotThreshold: 50, SnapshotInterval: 50 * time.Millisecond, TrailingLogs: 10,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Shutdown() })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 200 {
		if err := createOrg(ctx, node, fmt.Sprintf("org%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// With Raft's defaults (8192 entries, 2m, 10240 trailing) none of this
	// would happen within the wait.
	waitFor(t, 10*time.Second, func() error {
		if node.raft.Stats()["last_snapshot_index"] == "0" {
			return errors.New("no snapshot yet")
		}
		first, err := node.store.FirstIndex()
		if err != nil {
			return err
		}
		last, err := node.store.LastIndex()
		if err != nil {
			return err
		}
		if first <= 1 {
			return fmt.Errorf("log still starts at index %d", first)
		}
		if entries := last - first + 1; entries < 10 {
			return fmt.Errorf("log keeps %d entries, fewer than the 10 trailing ones", entries)
		}
		return nil
	})
}

// TestApply_LeaderGRPCSilent replaces the leader's gRPC listener with one
// that accepts connections and never responds, as a host that stopped
// responding looks to its peers. A write on a follower must fail with
// NoLeaderError after the leader wait, not hold until the apply timeout.
func TestApply_LeaderGRPCSilent(t *testing.T) {
	caDir := t.TempDir()
	internal, err := CreateInternalCA(caDir, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodes := startClusterWithCA(t, 3, internal, caDir, func(c *Config) {
		c.ApplyTimeout = time.Minute
		c.LeaderWait = time.Second
	})
	leader := leaderOf(t, nodes)
	follower := nodes[(leader+1)%3]
	ctx := context.Background()
	waitFor(t, 10*time.Second, func() error { return createOrg(ctx, follower.Node, "before") })

	addr := nodes[leader].cfg.GRPCAddr
	nodes[leader].grpc.Stop()
	follower.connMu.Lock()
	for _, c := range follower.conns {
		c.Close()
	}
	clear(follower.conns)
	follower.connMu.Unlock()
	silent, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var accepted []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range accepted {
			c.Close()
		}
	})

	start := time.Now()
	err = createOrg(ctx, follower.Node, "after")
	elapsed := time.Since(start)
	var noLeader *NoLeaderError
	if !errors.As(err, &noLeader) {
		t.Fatalf("write through a silent leader: %v, want NoLeaderError", err)
	}
	if !strings.Contains(noLeader.Last.Error(), "timed out connecting to "+addr) {
		t.Errorf("last error %q, want one that names the connection to %s", noLeader.Last, addr)
	}
	// gRPC gives up on a handshake after 20 seconds, the apply timeout is a
	// minute, and the leader wait is one second.
	if elapsed > 10*time.Second {
		t.Errorf("write failed after %s, want about the leader wait of 1s", elapsed)
	}
}

// freezingProxy relays TCP connections to target until it is frozen. Then
// it stops relaying without closing anything, as an open connection to a
// host that vanished behaves.
type freezingProxy struct {
	lis    net.Listener
	frozen atomic.Bool
	done   chan struct{}
	mu     sync.Mutex
	conns  []net.Conn
}

func startFreezingProxy(t *testing.T, target string) *freezingProxy {
	t.Helper()
	addr, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{lis: lis, done: make(chan struct{})}
	t.Cleanup(func() {
		close(p.done)
		lis.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	go func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go p.relay(out, in)
			go p.relay(in, out)
		}
	}()
	return p
}

func (p *freezingProxy) relay(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if p.frozen.Load() {
			<-p.done
			return
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// TestApply_LeaderVanishesBehindOpenConnection sends every node's gRPC
// traffic through a proxy. After a write through a follower has opened its
// connection to the leader, the leader's proxy goes silent and the
// leader's Raft stops, as when its host vanishes. The next write through
// the follower must reach the new leader instead of waiting on the silent
// connection until the apply timeout of one minute.
func TestApply_LeaderVanishesBehindOpenConnection(t *testing.T) {
	caDir := t.TempDir()
	internal, err := CreateInternalCA(caDir, "test")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	proxies := map[string]*freezingProxy{} // by the address they relay to
	proxyFor := func(addr string) string {
		mu.Lock()
		defer mu.Unlock()
		if proxies[addr] == nil {
			proxies[addr] = startFreezingProxy(t, addr)
		}
		return proxies[addr].lis.Addr().String()
	}
	nodes := startClusterWithCA(t, 3, internal, caDir, func(c *Config) {
		c.ApplyTimeout = time.Minute
		c.GRPCAddr = proxyFor(c.GRPCAddr)
		peers := slices.Clone(c.Peers)
		for i := range peers {
			peers[i].GRPCAddr = proxyFor(peers[i].GRPCAddr)
		}
		c.Peers = peers
	})
	leader := leaderOf(t, nodes)
	follower := nodes[(leader+1)%3]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(t, 10*time.Second, func() error { return createOrg(ctx, follower.Node, "before") })

	for real, p := range proxies {
		if p.lis.Addr().String() == nodes[leader].cfg.GRPCAddr {
			p.frozen.Store(true)
			t.Logf("froze the proxy of leader %s (%s)", nodes[leader].ID(), real)
		}
	}
	if err := nodes[leader].Node.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := createOrg(ctx, follower.Node, "after"); err != nil {
		t.Fatalf("write through %s after the leader vanished: %v", follower.ID(), err)
	}
}

// TestStatus_AppliedReachesCommitWhenIdle moves leadership on an idle
// cluster. The new leader commits a no-op entry, which Raft does not pass
// to the state machine, and the applied index must still reach the commit
// index instead of staying one behind until the next write.
func TestStatus_AppliedReachesCommitWhenIdle(t *testing.T) {
	nodes := startCluster(t, 3)
	old := nodes[leaderOf(t, nodes)]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := createOrg(ctx, old.Node, "before"); err != nil {
		t.Fatal(err)
	}

	// Wait until the leader has recorded every initial member, so that no
	// write follows the transfer.
	waitFor(t, 10*time.Second, func() error {
		return old.fsm.View(func(tx *fsm.Tx) error {
			for _, n := range nodes {
				if _, err := tx.ClusterMember(n.ID()); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err := old.raft.LeadershipTransfer().Error(); err != nil {
		t.Fatal(err)
	}
	var leader *testNode
	waitFor(t, 10*time.Second, func() error {
		for _, n := range nodes {
			if n != old && n.IsLeader() {
				leader = n
				return nil
			}
		}
		return errors.New("no new leader yet")
	})

	// Raft has applied everything the new leader appended, its no-op too.
	waitFor(t, 10*time.Second, func() error {
		last, commit, applied := leader.raft.LastIndex(), leader.raft.CommitIndex(), leader.raft.AppliedIndex()
		if commit != last || applied != commit {
			return fmt.Errorf("last index %d, commit index %d, Raft applied %d", last, commit, applied)
		}
		return nil
	})

	st, err := leader.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.AppliedIndex != st.CommitIndex {
		t.Errorf("commit index %d, applied index %d, want them equal", st.CommitIndex, st.AppliedIndex)
	}
}

// restartNode starts a node again from cfg, its data directory and
// addresses, and serves its gRPC services.
func restartNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("restart %s: %v", cfg.NodeID, err)
	}
	srv := grpc.NewServer(grpc.Creds(n.GRPCServerCredentials()))
	n.RegisterServices(srv)
	go srv.Serve(lis)
	t.Cleanup(func() { (&testNode{Node: n, grpc: srv}).stop() })
	return n
}

// TestCatchUp_WaitsForALeader restarts one node of a stopped cluster. With
// no majority it cannot learn which writes it missed, so it must not
// report itself caught up, however long it waits, until a second node
// returns and a leader confirms the commit index.
func TestCatchUp_WaitsForALeader(t *testing.T) {
	caDir := t.TempDir()
	internal, err := CreateInternalCA(caDir, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodes := startClusterWithCA(t, 3, internal, caDir, func(c *Config) { c.LeaderWait = 300 * time.Millisecond })
	leader := leaderOf(t, nodes)
	ctx := context.Background()
	if err := createOrg(ctx, nodes[leader].Node, "before"); err != nil {
		t.Fatal(err)
	}
	var cfgs []Config
	for _, n := range nodes {
		cfgs = append(cfgs, n.cfg)
		n.stop()
	}

	first := restartNode(t, cfgs[0])
	time.Sleep(5 * first.cfg.LeaderWait)
	if first.CaughtUp() {
		t.Fatal("a node alone reports itself caught up without a leader")
	}
	restartNode(t, cfgs[1])
	waitFor(t, 20*time.Second, func() error {
		if !first.CaughtUp() {
			return errors.New("not caught up after a second node returned")
		}
		return nil
	})
	if err := hasOrg(first, "before"); err != nil {
		t.Fatal(err)
	}
}
