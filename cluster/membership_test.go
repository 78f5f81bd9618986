package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	anchorv1 "anchor/api/anchorv1"
	"anchor/fsm"
	"anchor/internal/freeport"
)

// harness starts members one by one with their own listeners, for tests that
// grow and shrink the cluster.
type harness struct {
	t       *testing.T
	ca      *InternalCA
	caDir   string
	keyFile string    // gossip key; empty disables gossip
	net     *faultNet // nil unless the test partitions the network
}

func newHarness(t *testing.T, gossip bool) *harness {
	t.Helper()
	caDir := t.TempDir()
	internal, err := CreateInternalCA(caDir, "test")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ca: internal, caDir: caDir}
	if gossip {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		h.keyFile = filepath.Join(t.TempDir(), "gossip.key")
		if err := os.WriteFile(h.keyFile, []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

type member struct {
	*testNode
	peer       Peer
	gossipAddr string
	dataDir    string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// peers reserves addresses for n members named prefix1..prefixN.
func (h *harness) peers(prefix string, n int) []*member {
	var ms []*member
	for i := 1; i <= n; i++ {
		id := prefix + string(rune('0'+i))
		ms = append(ms, &member{
			peer:       Peer{ID: id, RaftAddr: freeAddr(h.t), GRPCAddr: freeAddr(h.t)},
			gossipAddr: freeAddr(h.t),
			dataDir:    filepath.Join(h.t.TempDir(), id),
		})
	}
	return ms
}

// start runs m; initial lists the bootstrap voters (nil for a joiner), and
// seeds the gossip addresses to join.
func (h *harness) start(m *member, initial []Peer, seeds []string, cleanup time.Duration) {
	h.t.Helper()
	lis, err := net.Listen("tcp", m.peer.GRPCAddr)
	if err != nil {
		h.t.Fatal(err)
	}
	cfg := Config{
		NodeID: m.peer.ID, DataDir: m.dataDir, RaftAddr: m.peer.RaftAddr, GRPCAddr: m.peer.GRPCAddr,
		Peers: initial, ApplyTimeout: 5 * time.Second, DeadServerCleanup: cleanup,
		Credentials: nodeCredentials(h.t, h.ca, h.caDir, m.peer.ID),
	}
	if h.keyFile != "" {
		cfg.Gossip = &GossipConfig{Addr: m.gossipAddr, KeyFile: h.keyFile, Seeds: seeds}
	}
	if h.net != nil {
		h.net.register(m.peer.ID, m.peer.RaftAddr, m.peer.GRPCAddr)
		cfg.faultNet = h.net
	}
	n, err := Start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		h.t.Fatalf("start %s: %v", m.peer.ID, err)
	}
	srv := grpc.NewServer(grpc.Creds(n.GRPCServerCredentials()))
	n.RegisterServices(srv)
	go srv.Serve(lis)
	m.testNode = &testNode{Node: n, grpc: srv}
	h.t.Cleanup(m.stop)
}

func peerList(ms []*member) []Peer {
	var out []Peer
	for _, m := range ms {
		out = append(out, m.peer)
	}
	return out
}

func gossipSeeds(ms []*member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.gossipAddr)
	}
	return out
}

func (h *harness) bootstrap(ms []*member) {
	h.t.Helper()
	for _, m := range ms {
		h.start(m, peerList(ms), gossipSeeds(ms), 0)
	}
}

func suffrageOf(t *testing.T, n *Node, id string) (raft.ServerSuffrage, bool) {
	t.Helper()
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return s.Suffrage, true
		}
	}
	return 0, false
}

func testNodes(ms []*member) []*testNode {
	var out []*testNode
	for _, m := range ms {
		out = append(out, m.testNode)
	}
	return out
}

func TestJoin_VoterAndNonvoterThroughFollower(t *testing.T) {
	h := newHarness(t, false)
	ms := h.peers("n", 3)
	h.bootstrap(ms)
	leader := leaderOf(t, testNodes(ms))
	follower := ms[(leader+1)%3]
	ctx := context.Background()
	if err := createOrg(ctx, ms[0].Node, "before-join"); err != nil {
		t.Fatal(err)
	}

	extra := h.peers("x", 2)
	h.start(extra[0], nil, nil, 0)
	h.start(extra[1], nil, nil, 0)
	jctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := extra[0].JoinCluster(jctx, []string{follower.peer.GRPCAddr}, false); err != nil {
		t.Fatalf("join voter: %v", err)
	}
	if err := extra[1].JoinCluster(jctx, []string{follower.peer.GRPCAddr}, true); err != nil {
		t.Fatalf("join non-voter: %v", err)
	}
	if s, ok := suffrageOf(t, ms[leader].Node, "x1"); !ok || s != raft.Voter {
		t.Fatalf("x1 suffrage %v (member %v), want voter", s, ok)
	}
	if s, ok := suffrageOf(t, ms[leader].Node, "x2"); !ok || s != raft.Nonvoter {
		t.Fatalf("x2 suffrage %v (member %v), want nonvoter", s, ok)
	}
	// Both receive earlier and later writes; the non-voter serves them.
	if err := createOrg(ctx, extra[1].Node, "after-join"); err != nil {
		t.Fatalf("write through non-voter: %v", err)
	}
	for _, m := range extra {
		waitFor(t, 10*time.Second, func() error { return hasOrg(m.Node, "before-join") })
		waitFor(t, 10*time.Second, func() error { return hasOrg(m.Node, "after-join") })
	}
	// Joining again with the same addresses changes nothing.
	if err := extra[0].JoinCluster(jctx, []string{ms[0].peer.GRPCAddr}, false); err != nil {
		t.Fatalf("repeated join: %v", err)
	}
}

func TestJoin_InvalidAddressRejected(t *testing.T) {
	h := newHarness(t, false)
	ms := h.peers("n", 3)
	h.bootstrap(ms)
	leader := ms[leaderOf(t, testNodes(ms))].Node
	before := leader.raft.GetConfiguration()
	if err := before.Error(); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, raftAddr, grpcAddr string }{
		{"RaftNoPort", "127.0.0.1", "127.0.0.1:9000"},
		{"GRPCNoPort", "127.0.0.1:9001", "node-x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := leader.Join(context.Background(), &anchorv1.JoinRequest{
				Id: "x", RaftAddress: tc.raftAddr, GrpcAddress: tc.grpcAddr})
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("Join: %v, want InvalidArgument", err)
			}
			err = leader.State().View(func(tx *fsm.Tx) error {
				if _, err := tx.ClusterMember("x"); err == nil {
					return errors.New("a member record for x was stored")
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	after := leader.raft.GetConfiguration()
	if err := after.Error(); err != nil {
		t.Fatal(err)
	}
	if len(after.Configuration().Servers) != len(before.Configuration().Servers) {
		t.Errorf("%d servers after the rejected joins, want %d",
			len(after.Configuration().Servers), len(before.Configuration().Servers))
	}
}

func TestRemove_RefusedWhenQuorumWouldBreak(t *testing.T) {
	h := newHarness(t, true)
	ms := h.peers("n", 3)
	h.bootstrap(ms)
	leader := leaderOf(t, testNodes(ms))
	down := ms[(leader+1)%3]
	alive := ms[(leader+2)%3]
	down.stop()
	waitFor(t, 30*time.Second, func() error {
		if ms[leader].memberAlive(down.peer.ID) {
			return errors.New("gossip still reports the stopped node alive")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err := ms[leader].Remove(ctx, alive.peer.ID, false)
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("remove of a live voter with one voter down: got %v, want FailedPrecondition", err)
	}
	if _, ok := suffrageOf(t, ms[leader].Node, alive.peer.ID); !ok {
		t.Fatal("refused removal changed the configuration")
	}
	if _, err := ms[leader].Remove(ctx, down.peer.ID, false); err != nil {
		t.Fatalf("remove of the dead voter: %v", err)
	}
	if _, ok := suffrageOf(t, ms[leader].Node, down.peer.ID); ok {
		t.Fatal("dead voter still in the configuration")
	}
	if _, err := ms[leader].Remove(ctx, "nobody", false); status.Code(err) != codes.NotFound {
		t.Fatalf("remove of an unknown node: got %v, want NotFound", err)
	}
}

func TestCleanup_DeadVoterRemovedOnlyAboveThree(t *testing.T) {
	h := newHarness(t, true)
	ms := h.peers("n", 4)
	for _, m := range ms {
		h.start(m, peerList(ms), gossipSeeds(ms), time.Second)
	}
	leader := leaderOf(t, testNodes(ms))
	victims := []*member{ms[(leader+1)%4], ms[(leader+2)%4]}

	// 4 voters, one dead: removing it leaves 3, so it goes.
	victims[0].stop()
	waitFor(t, 60*time.Second, func() error {
		if _, ok := suffrageOf(t, ms[leader].Node, victims[0].peer.ID); ok {
			return errors.New("dead voter not removed yet")
		}
		return nil
	})
	// 3 voters, one dead: removing it would leave 2, so it stays.
	victims[1].stop()
	waitFor(t, 30*time.Second, func() error {
		if ms[leader].memberAlive(victims[1].peer.ID) {
			return errors.New("gossip still reports the node alive")
		}
		return nil
	})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := suffrageOf(t, ms[leader].Node, victims[1].peer.ID); !ok {
			t.Fatal("cleanup shrank a 3-voter cluster to 2")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestTransferLeadership_ToChosenVoter(t *testing.T) {
	h := newHarness(t, false)
	ms := h.peers("n", 3)
	h.bootstrap(ms)
	leader := leaderOf(t, testNodes(ms))
	target := ms[(leader+2)%3]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Ask a follower; it passes the request to the leader.
	got, err := ms[(leader+1)%3].TransferLeadership(ctx, target.peer.ID)
	if err != nil {
		t.Fatalf("transfer leadership: %v", err)
	}
	if got != target.peer.ID {
		t.Fatalf("new leader %s, want %s", got, target.peer.ID)
	}
	waitFor(t, 5*time.Second, func() error {
		if !target.IsLeader() {
			return errors.New("target is not leader")
		}
		return nil
	})
}

// bulkCAID is the SubCA that bulk-loaded credentials belong to.
const bulkCAID = "bulk/r/c/sub"

// signedCredentials makes a CA certificate and n leaf certificates with
// distinct serials signed by a throwaway key, for bulk-loading the state.
func signedCredentials(t *testing.T, n int) (caDER []byte, leaves [][]byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1 << 40), Subject: pkix.Name{CommonName: "bulk CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err = x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: "bulk.test"}, DNSNames: []string{"bulk.test"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
	}
	out := make([][]byte, n)
	var wg sync.WaitGroup
	workers := 4
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := *tmpl
			for i := w; i < n; i += workers {
				// A name per leaf, so each credential is its own certificate
				// as distinct ACME orders would be.
				local.SerialNumber = big.NewInt(int64(i + 1))
				local.DNSNames = []string{bulkName(i)}
				der, err := x509.CreateCertificate(rand.Reader, &local, caTmpl, key.Public(), key)
				if err != nil {
					panic(err)
				}
				out[i] = der
			}
		}()
	}
	wg.Wait()
	return caDER, out
}

// restoreWithRetry restores the snapshot file through the leader, retrying
// as an operator would when leadership moves during the restore.
func restoreWithRetry(t *testing.T, ctx context.Context, ms []*member, path string) {
	t.Helper()
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		// Installing a large snapshot on followers can cost the leader its
		// lease, and the next election waits for busy members.
		leader := waitLeader(t, testNodes(ms), 2*time.Minute)
		var in *os.File
		if in, err = os.Open(path); err != nil {
			t.Fatal(err)
		}
		st, _ := in.Stat()
		_, err = ms[leader].RestoreSnapshot(ctx, in, st.Size())
		in.Close()
		if err == nil {
			return
		}
		t.Logf("restore attempt %d: %v", attempt+1, err)
	}
	t.Fatalf("restore: %v", err)
}

func bulkName(i int) string { return fmt.Sprintf("bulk-%d.test", i) }

// loadCredentials creates the bulk chain and commits one credential per DER
// through n with bounded concurrency.
func loadCredentials(t *testing.T, n *Node, caDER []byte, ders [][]byte) {
	t.Helper()
	ctx := context.Background()
	for _, cmd := range []*fsm.Command{
		fsm.MustCommand(fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: "bulk"}),
		fsm.MustCommand(fsm.CmdCreateRealm, fsm.CreateRealm{Org: "bulk", Name: "r"}),
		fsm.MustCommand(fsm.CmdCreateChain, fsm.CreateChain{Org: "bulk", Realm: "r", Name: "c",
			Root: fsm.CA{Name: "root", CertDER: caDER}, SubCA: fsm.CA{Name: "sub", CertDER: caDER}}),
	} {
		if res, err := n.Apply(ctx, cmd); err != nil || res.Err != nil {
			t.Fatalf("apply %s: %v %v", cmd.Type, err, res.Err)
		}
	}
	sem := make(chan struct{}, 128)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i, der := range ders {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			cmd := fsm.MustCommand(fsm.CmdIssueCredential,
				fsm.IssueCredential{ChainID: "bulk/r/c", CAID: bulkCAID, Names: []string{bulkName(i)}, DER: der})
			// Apply and the retries below send one request ID, so a copy
			// that committed before an error is not applied again.
			cmd.RequestID = fsm.NewRequestID()
			var res *fsm.Result
			var err error
			// A client retries while an election runs, as ACME clients do.
			for attempt := 0; attempt < 10; attempt++ {
				if res, err = n.Apply(ctx, cmd); !errors.Is(err, ErrNoLeader) {
					break
				}
			}
			if err == nil && res.Err != nil {
				err = res.Err
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("load credentials: %v", firstErr)
	}
}

func credentialCount(n *Node) int {
	count := 0
	_ = n.State().View(func(tx *fsm.Tx) error {
		count = tx.CredentialCount()
		return nil
	})
	return count
}

func TestSnapshot_SaveRestoreAndInstallOnJoiner(t *testing.T) {
	const total = 100_000
	h := newHarness(t, false)
	ms := h.peers("n", 3)
	h.bootstrap(ms)
	leader := leaderOf(t, testNodes(ms))
	start := time.Now()
	caDER, ders := signedCredentials(t, total)
	t.Logf("signed %d certificates in %s", total, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	loadCredentials(t, ms[leader].Node, caDER, ders)
	t.Logf("committed %d credentials in %s", total, time.Since(start).Round(time.Millisecond))
	if got := credentialCount(ms[leader].Node); got != total {
		t.Fatalf("leader holds %d credentials, want %d", got, total)
	}

	// A node joining now needs entries that a snapshot has compacted away,
	// so it is brought up to date by snapshot installation.
	if err := ms[leader].raft.Snapshot().Error(); err != nil {
		t.Fatalf("take snapshot: %v", err)
	}
	joiner := h.peers("j", 1)[0]
	h.start(joiner, nil, nil, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := joiner.JoinCluster(ctx, []string{ms[leader].peer.GRPCAddr}, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() error {
		if got := credentialCount(joiner.Node); got != total {
			return fmt.Errorf("joiner holds %d credentials, want %d", got, total)
		}
		return nil
	})
	t.Logf("joiner caught up by snapshot installation")

	// Save through a follower and restore into a fresh cluster.
	backup := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(backup)
	if err != nil {
		t.Fatal(err)
	}
	// The follower may still be applying the bulk load; the save waits.
	ctx, cancel = context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	idx, _, err := ms[(leader+1)%3].SaveSnapshot(ctx, f)
	f.Close()
	if err != nil {
		t.Fatalf("save snapshot: %v", err)
	}
	if idx < total {
		t.Fatalf("snapshot reflects index %d, below the %d writes", idx, total)
	}
	h2 := newHarness(t, false)
	fresh := h2.peers("f", 3)
	h2.bootstrap(fresh)
	restoreWithRetry(t, ctx, fresh, backup)
	// Reads right after the restore see it without waiting for a write.
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	if err := fresh[waitLeader(t, testNodes(fresh), 2*time.Minute)].LinearizableRead(rctx); err != nil {
		t.Fatalf("linearizable read after restore: %v", err)
	}
	rcancel()
	// The fresh cluster's log is far shorter than the backup's: writes after
	// the restore must still apply everywhere, also after a restart.
	fl := waitLeader(t, testNodes(fresh), 2*time.Minute)
	if err := createOrg(ctx, fresh[fl].Node, "after-restore"); err != nil {
		t.Fatal(err)
	}
	for _, m := range fresh {
		waitFor(t, 30*time.Second, func() error {
			if got := credentialCount(m.Node); got != total {
				return errors.New("restore not applied yet")
			}
			return hasOrg(m.Node, "after-restore")
		})
	}
	follower := fresh[(fl+1)%3]
	follower.stop()
	h2.start(follower, peerList(fresh), nil, 0)
	if err := createOrg(ctx, fresh[fl].Node, "after-restart"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() error {
		if got := credentialCount(follower.Node); got != total {
			return errors.New("restarted follower lost restored state")
		}
		return hasOrg(follower.Node, "after-restart")
	})
}

func TestMembership_GrowToFiveAndShrinkBack(t *testing.T) {
	h := newHarness(t, false)
	ms := h.peers("n", 3)
	h.bootstrap(ms)
	leaderOf(t, testNodes(ms))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	extra := h.peers("x", 2)
	for _, m := range extra {
		h.start(m, nil, nil, 0)
		if err := m.JoinCluster(ctx, []string{ms[0].peer.GRPCAddr}, false); err != nil {
			t.Fatalf("join %s: %v", m.peer.ID, err)
		}
	}
	all := append(append([]*member(nil), ms...), extra...)
	waitVoters(t, ms[0].Node, 5)
	if err := createOrg(ctx, extra[1].Node, "five"); err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		waitFor(t, 10*time.Second, func() error { return hasOrg(m.Node, "five") })
	}

	// Shrink back through a member that stays; the removed nodes stop.
	for _, m := range extra {
		if _, err := ms[1].Remove(ctx, m.peer.ID, false); err != nil {
			t.Fatalf("remove %s: %v", m.peer.ID, err)
		}
		m.stop()
	}
	waitVoters(t, ms[0].Node, 3)
	if err := createOrg(ctx, ms[2].Node, "three-again"); err != nil {
		t.Fatalf("write after shrinking: %v", err)
	}
	for _, m := range ms {
		waitFor(t, 10*time.Second, func() error { return hasOrg(m.Node, "three-again") })
	}
}

func waitVoters(t *testing.T, n *Node, want int) {
	t.Helper()
	waitFor(t, 10*time.Second, func() error {
		if got := n.VoterCount(); got != want {
			return fmt.Errorf("%d voters, want %d", got, want)
		}
		return nil
	})
}

func TestLinearizableRead_AfterElectionWithoutWrites(t *testing.T) {
	h := newHarness(t, false)
	ms := h.peers("n", 3)
	h.bootstrap(ms)
	leader := leaderOf(t, testNodes(ms))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The new leader's first entry is a no-op that never reaches the FSM.
	if _, err := ms[leader].TransferLeadership(ctx, ""); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, testNodes(ms))
	for _, m := range ms {
		rctx, rcancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := m.LinearizableRead(rctx)
		rcancel()
		if err != nil && status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("linearizable read on %s after an election: %v", m.peer.ID, err)
		}
	}
}
