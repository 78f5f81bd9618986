package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"anchor/ca"
	"anchor/cluster"
	"anchor/fsm"
	"anchor/hsm"
	"anchor/internal/freeport"
	"anchor/node"
	softhsmtest "anchor/softhsm-test"
)

// runAsCommandEnv makes the test binary run the command instead of the tests, so a
// test can start anchor-ceremony as a process of its own.
const runAsCommandEnv = "ANCHOR_CEREMONY_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsCommandEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// testLogWriter passes a node's log lines to t.Log, which prints them when the test
// fails.
type testLogWriter struct {
	t  *testing.T
	id string
}

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s: %s", w.id, p)
	return len(p), nil
}

// testNode is an in-process cluster member with its HSM and key manager.
type testNode struct {
	id      string
	cluster *cluster.Node
	hsm     *hsm.HSM
	config  string // path of its node configuration file

	// keys moves CA keys between the nodes' HSMs once started, and record is what
	// it registers.
	keys   *ca.KeyManager
	record fsm.Node
	// startKeys starts the key manager, after registering the node with it unless
	// the caller did.
	startKeys func(registered bool)
}

// startCluster starts n members, each with its own SoftHSM2 token and its key
// manager, and writes a node configuration file for each.
func startCluster(t *testing.T, n int) []*testNode {
	t.Helper()
	nodes := startMembers(t, n)
	for _, node := range nodes {
		node.startKeys(false)
	}
	return nodes
}

// startMembers starts n members, each with its own SoftHSM2 token, and writes a node
// configuration file for each. It does not start their key managers.
func startMembers(t *testing.T, n int) []*testNode {
	t.Helper()
	first, err := softhsmtest.NewToken(filepath.Join(t.TempDir(), "hsm"), "node1")
	if err != nil {
		t.Fatalf("NewToken: %v", err)
	}
	t.Setenv(softhsmtest.ConfigEnv, first.ConfigPath)
	tokens := []*softhsmtest.Token{first}
	for i := 2; i <= n; i++ {
		token, err := first.AddToken(fmt.Sprintf("node%d", i))
		if err != nil {
			t.Fatalf("AddToken: %v", err)
		}
		tokens = append(tokens, token)
	}
	caDir := t.TempDir()
	internal, err := cluster.CreateInternalCA(caDir, "ceremony-test")
	if err != nil {
		t.Fatalf("CreateInternalCA: %v", err)
	}

	var peers []cluster.Peer
	var listeners []net.Listener
	for i := 1; i <= n; i++ {
		peer, lis := reservePeer(t, fmt.Sprintf("node%d", i))
		peers = append(peers, peer)
		listeners = append(listeners, lis)
	}
	var nodes []*testNode
	for i, peer := range peers {
		tlsCfg, err := internal.IssueNode(caDir, t.TempDir(), peer.ID, []string{"127.0.0.1"})
		if err != nil {
			t.Fatalf("IssueNode: %v", err)
		}
		nodes = append(nodes, startNode(t, peers, i, listeners[i], tokens[i], tlsCfg))
	}
	return nodes
}

func reservePeer(t *testing.T, id string) (cluster.Peer, net.Listener) {
	t.Helper()
	raftAddr, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return cluster.Peer{ID: id, RaftAddr: raftAddr, GRPCAddr: grpcLis.Addr().String()}, grpcLis
}

func startNode(t *testing.T, peers []cluster.Peer, i int, lis net.Listener,
	token *softhsmtest.Token, tlsCfg cluster.TLSConfig) *testNode {
	t.Helper()
	peer := peers[i]
	logger := slog.New(slog.NewTextHandler(testLogWriter{t, peer.ID}, nil))
	creds, err := cluster.LoadCredentials(tlsCfg)
	if err != nil {
		t.Fatalf("LoadCredentials: %v", err)
	}
	h, err := hsm.Open(token.HSMConfig(), logger)
	if err != nil {
		t.Fatalf("open HSM: %v", err)
	}
	dataDir := filepath.Join(t.TempDir(), peer.ID)
	member, err := cluster.Start(cluster.Config{NodeID: peer.ID, DataDir: dataDir,
		RaftAddr: peer.RaftAddr, GRPCAddr: peer.GRPCAddr, Peers: peers, Credentials: creds},
		logger)
	if err != nil {
		t.Fatalf("start %s: %v", peer.ID, err)
	}
	srv := grpc.NewServer(grpc.Creds(member.GRPCServerCredentials()))
	member.RegisterServices(srv)
	go srv.Serve(lis)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	keysStarted := false
	n := &testNode{id: peer.ID, cluster: member, hsm: h,
		keys:   ca.NewKeyManager(member.State(), member, h, peer.ID, member.IsLeader, logger),
		record: fsm.Node{RaftAddr: peer.RaftAddr, GRPCAddr: peer.GRPCAddr}}
	n.startKeys = func(registered bool) {
		keysStarted = true
		go func() {
			defer close(done)
			if !registered && n.keys.Register(ctx, n.record) != nil {
				return
			}
			n.keys.Run(ctx)
		}()
	}
	t.Cleanup(func() {
		cancel()
		if keysStarted {
			<-done
		}
		srv.Stop()
		_ = member.Shutdown()
		_ = h.Close()
	})
	n.config = writeNodeConfig(t, peers, i, dataDir, token, tlsCfg)
	return n
}

// writeNodeConfig writes the configuration file an anchor-node process of this member
// would read. The HTTP and ACME settings are required by node.LoadConfig but unused by
// anchor-ceremony.
func writeNodeConfig(t *testing.T, peers []cluster.Peer, i int, dataDir string,
	token *softhsmtest.Token, tlsCfg cluster.TLSConfig) string {
	t.Helper()
	cfg := node.Config{
		NodeID: peers[i].ID, DataDir: dataDir, RaftAddr: peers[i].RaftAddr,
		GRPCAddr: peers[i].GRPCAddr, HTTPAddr: "127.0.0.1:1", ACMEAddr: "127.0.0.1:2",
		PublicURLs: []string{"http://anchor.test"}, Peers: peers,
		HSM: token.HSMConfig(), TLS: tlsCfg,
		ACME: node.ACMEConfig{TLSCertFile: tlsCfg.CertFile, TLSKeyFile: tlsCfg.KeyFile},
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "node.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRun_CeremonyFromSeparateProcess runs anchor-ceremony as a process of its own
// against a running two-node cluster with the example specification. The node whose
// configuration it uses must find the new keys in its token and wrap them for the
// other node.
func TestRun_CeremonyFromSeparateProcess(t *testing.T) {
	nodes := startCluster(t, 2)
	// Both nodes create their transport keys first. A node that writes to its token
	// while another process does cannot see that process's keys until its HSM is
	// reopened, and two HSMs in one process cannot be reopened that far (see
	// hsm.HSM.Refresh).
	waitRegistered(t, nodes)
	outDir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-config", nodes[0].config,
		"-spec", "../../docs/examples/ceremony.json", "-out", outDir)
	cmd.Env = append(os.Environ(), runAsCommandEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("anchor-ceremony: %v\nstderr:\n%s", err, stderr.String())
	}

	fingerprint := outputField(t, stdout.String(), "root", "sha256")
	rootFile := filepath.Join(outDir, "root.pem")
	out, err := exec.Command("openssl", "x509", "-noout", "-fingerprint", "-sha256",
		"-in", rootFile).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "="+fingerprint) {
		t.Errorf("printed fingerprint %s, openssl prints %s", fingerprint, out)
	}
	for _, name := range []string{"servers.pem", "clients.pem"} {
		out, err := exec.Command("openssl", "verify", "-CAfile", rootFile,
			filepath.Join(outDir, name)).CombinedOutput()
		if err != nil {
			t.Errorf("openssl verify %s: %v: %s", name, err, out)
		}
	}
	waitAllHolders(t, nodes)
}

// TestRun_CeremonyKeysHiddenFromNode runs the ceremony while the node's own process
// keeps generating keys in the same token and its key manager is not running yet.
// SoftHSM2 then hides some of the ceremony's keys from the node process, and the key
// manager must reopen the HSM to find them.
func TestRun_CeremonyKeysHiddenFromNode(t *testing.T) {
	nodes := startMembers(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := nodes[0].keys.Register(ctx, nodes[0].record); err != nil {
		t.Fatalf("register the node: %v", err)
	}

	// About one run in four leaves every key visible, probably when the ceremony's
	// last write follows the node's, so the test makes new chains until a key is hidden.
	var keyIDs []string
	hidden := 0
	for attempt := 1; hidden == 0; attempt++ {
		if attempt > 5 {
			t.Fatal("the node's process saw every key of five ceremonies, so the test " +
				"does not exercise the key manager's reopening")
		}
		chain := fmt.Sprintf("web%d", attempt)
		runCeremonyBesideWrites(t, nodes[0], chain)
		ids := chainKeyIDs(t, nodes[0], "example/production/"+chain)
		for _, id := range ids {
			if !nodes[0].hsm.HasKey(id) {
				hidden++
			}
		}
		keyIDs = append(keyIDs, ids...)
	}

	nodes[0].startKeys(true)
	deadline := time.Now().Add(60 * time.Second)
	for _, id := range keyIDs {
		for !nodes[0].hsm.HasKey(id) {
			if time.Now().After(deadline) {
				t.Fatalf("the node's HSM does not find the ceremony's key %s after 60s", id)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// runCeremonyBesideWrites runs the example ceremony for chain while n's process
// generates keys in the same token.
func runCeremonyBesideWrites(t *testing.T, n *testNode, chain string) {
	t.Helper()
	data, err := os.ReadFile("../../docs/examples/ceremony.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	spec["chain"] = chain
	if data, err = json.Marshal(spec); err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(t.TempDir(), "ceremony.json")
	if err := os.WriteFile(specPath, data, 0o600); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	stopped := make(chan error)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				stopped <- nil
				return
			default:
			}
			id := fmt.Sprintf("busy-%s-%d", chain, i)
			if _, err := n.hsm.GenerateKey(id, hsm.RSA2048); err != nil {
				stopped <- err
				return
			}
		}
	}()
	cmd := exec.Command(os.Args[0], "-config", n.config, "-spec", specPath,
		"-out", t.TempDir(), "-timeout", "1m")
	cmd.Env = append(os.Environ(), runAsCommandEnv+"=1")
	out, err := cmd.CombinedOutput()
	close(stop)
	if genErr := <-stopped; genErr != nil {
		t.Fatalf("generate a key in the node's process: %v", genErr)
	}
	if err != nil {
		t.Fatalf("anchor-ceremony: %v\n%s", err, out)
	}
}

// chainKeyIDs returns the key IDs of a chain's root and SubCAs in n's state.
func chainKeyIDs(t *testing.T, n *testNode, chainID string) []string {
	t.Helper()
	var keyIDs []string
	err := n.cluster.State().View(func(tx *fsm.Tx) error {
		chain, err := tx.Chain(chainID)
		if err != nil {
			return err
		}
		for _, caID := range append([]string{chain.RootCAID}, chain.SubCAIDs...) {
			record, err := tx.CA(caID)
			if err != nil {
				return err
			}
			keyIDs = append(keyIDs, record.KeyID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keyIDs
}

// outputField returns the word after key on the output line that starts with kind.
func outputField(t *testing.T, output, kind, key string) string {
	t.Helper()
	for line := range strings.Lines(output) {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != kind {
			continue
		}
		if i := slices.Index(fields, key); i >= 0 && i+1 < len(fields) {
			return fields[i+1]
		}
	}
	t.Fatalf("no %s line with %s in output:\n%s", kind, key, output)
	return ""
}

// waitRegistered waits until every node has registered its HSM transport key.
func waitRegistered(t *testing.T, nodes []*testNode) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		registered := 0
		err := nodes[0].cluster.State().View(func(tx *fsm.Tx) error {
			records, err := tx.Nodes()
			for _, r := range records {
				if len(r.TransportKey) > 0 {
					registered++
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if registered == len(nodes) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d nodes registered after 60s", registered, len(nodes))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitAllHolders waits until every node holds every key of the example chain.
func waitAllHolders(t *testing.T, nodes []*testNode) {
	t.Helper()
	keyIDs := chainKeyIDs(t, nodes[0], "example/production/web")
	deadline := time.Now().Add(60 * time.Second)
	for {
		var missing error
		err := nodes[0].cluster.State().View(func(tx *fsm.Tx) error {
			for _, id := range keyIDs {
				for _, n := range nodes {
					if missing == nil && !ca.HoldsKey(tx, id, n.id) {
						missing = fmt.Errorf("%s does not hold key %s", n.id, id)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if missing == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after 60s", missing)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestRun_InvalidUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "-config and -spec are required"},
		{"missing config", []string{"-config", "/nonexistent/node.json", "-spec", "x.json"},
			"read config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.want)
			}
		})
	}
}
