package cluster

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStart_OtherClustersDataRejected(t *testing.T) {
	h := newHarness(t, false)
	ms := h.peers("n", 1)
	h.bootstrap(ms)
	ms[0].stop()

	// The same data directory under a node certificate from another CA.
	other := newHarness(t, false)
	cfg := Config{
		NodeID: "n1", DataDir: ms[0].dataDir, RaftAddr: ms[0].peer.RaftAddr, GRPCAddr: ms[0].peer.GRPCAddr,
		Peers:       peerList(ms),
		Credentials: nodeCredentials(t, other.ca, other.caDir, "n1"),
	}
	_, err := Start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		t.Fatal("node started on another cluster's data directory")
	}
	for _, want := range []string{ms[0].dataDir, "empty data directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestStart_CorruptStateDatabaseNamesFix(t *testing.T) {
	h := newHarness(t, false)
	ms := h.peers("n", 1)
	h.bootstrap(ms)
	ms[0].stop()
	statePath := filepath.Join(ms[0].dataDir, "state.db")
	if err := os.WriteFile(statePath, []byte(strings.Repeat("garbage", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		NodeID: "n1", DataDir: ms[0].dataDir, RaftAddr: ms[0].peer.RaftAddr, GRPCAddr: ms[0].peer.GRPCAddr,
		Peers: peerList(ms), Credentials: nodeCredentials(t, h.ca, h.caDir, "n1"),
	}
	_, err := Start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		t.Fatal("node started on a corrupt state database")
	}
	for _, want := range []string{statePath, "move it aside"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestStart_MissingStateDatabaseRebuilt(t *testing.T) {
	h := newHarness(t, false)
	ms := h.peers("n", 3)
	h.bootstrap(ms)
	leader := leaderOf(t, testNodes(ms))
	if err := createOrg(t.Context(), ms[leader].Node, "survivor"); err != nil {
		t.Fatal(err)
	}
	f := ms[(leader+1)%3]
	waitFor(t, 5e9, func() error { return hasOrg(f.Node, "survivor") })
	f.stop()
	if err := os.Remove(filepath.Join(f.dataDir, "state.db")); err != nil {
		t.Fatal(err)
	}
	h.start(f, peerList(ms), nil, 0)
	waitFor(t, 10e9, func() error { return hasOrg(f.Node, "survivor") })
}

// A machine that crashes while state.db is written without fsync leaves a
// marker from an earlier boot. The node must not trust the database, which
// may be torn (here: garbage that bbolt cannot open), and rebuild it from
// its snapshot and the entries after it.
func TestStart_StateFromEarlierBootRebuilt(t *testing.T) {
	h := newHarness(t, false)
	ms := h.peers("n", 3)
	h.bootstrap(ms)
	leader := leaderOf(t, testNodes(ms))
	if err := createOrg(t.Context(), ms[leader].Node, "in-snapshot"); err != nil {
		t.Fatal(err)
	}
	f := ms[(leader+1)%3]
	waitFor(t, 5e9, func() error { return hasOrg(f.Node, "in-snapshot") })
	if err := f.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if err := createOrg(t.Context(), ms[leader].Node, "in-log"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5e9, func() error { return hasOrg(f.Node, "in-log") })
	f.stop()

	statePath := filepath.Join(f.dataDir, "state.db")
	if err := os.WriteFile(statePath, []byte(strings.Repeat("torn", 2048)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath+".unsynced", []byte("an-earlier-boot\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.start(f, peerList(ms), nil, 0)
	waitFor(t, 10e9, func() error {
		if err := hasOrg(f.Node, "in-snapshot"); err != nil {
			return err
		}
		return hasOrg(f.Node, "in-log")
	})
}
