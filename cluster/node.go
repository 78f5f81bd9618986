package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"google.golang.org/grpc"

	"anchor/fsm"
)

// Node is this process's member of the cluster.
type Node struct {
	cfg    Config
	logger *slog.Logger
	fsm    *fsm.FSM
	raft   *raft.Raft
	trans  *raft.NetworkTransport
	store  *raftboltdb.BoltStore

	connMu sync.Mutex
	conns  map[string]*grpc.ClientConn // by gRPC address

	gossip *gossip // nil without Config.Gossip
	stopCh chan struct{}

	// caughtUp is set once the state has caught up after start (catchUp).
	caughtUp atomic.Bool
	// leaders wakes writers waiting for a leader (Apply, watchLeader).
	leaders leaderWatch

	shutdownOnce sync.Once
}

// Start opens the node's stores, joins or bootstraps the cluster, and starts
// Raft. The caller serves the node's gRPC services (RegisterServices) on
// cfg.GRPCAddr so that followers can forward writes.
func Start(cfg Config, logger *slog.Logger) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", cfg.DataDir, err)
	}

	// Raft writes snapshots, which contain EAB HMAC keys, with modes of its own, so
	// an existing data directory that others may read is closed too.
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		logger.Warn("setting data directory mode to 0700 failed, so other users may read "+
			"its snapshots", "data_dir", cfg.DataDir, "error", err)
	}

	if err := checkClusterIdentity(cfg.DataDir, cfg.Credentials.caFingerprint); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, logger: logger, conns: map[string]*grpc.ClientConn{}, stopCh: make(chan struct{})}
	if err := n.open(); err != nil {
		n.closeStores()
		return nil, err
	}
	if cfg.Gossip != nil {
		g, err := startGossip(n, cfg.Gossip)
		if err != nil {
			_ = n.Shutdown()
			return nil, err
		}
		n.gossip = g
	}
	if cfg.DeadServerCleanup > 0 {
		go n.cleanupDeadServers()
	}
	go n.recordInitialPeers()
	go n.keepOwnRecord()
	go n.catchUp()
	return n, nil
}

func (n *Node) open() error {
	var err error
	n.fsm, err = fsm.OpenWith(filepath.Join(n.cfg.DataDir, "state.db"), n.logger,
		fsm.Options{SyncEachBatch: n.cfg.StateSync})
	if err != nil {
		return err
	}
	n.store, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(n.cfg.DataDir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft log %s: %w", filepath.Join(n.cfg.DataDir, "raft.db"), err)
	}
	hlog := newHCLogger(n.logger)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, 3, hlog)
	if err != nil {
		return fmt.Errorf("open snapshot store in %s: %w", n.cfg.DataDir, err)
	}
	n.fsm.SetSnapshotIndexSource(func() uint64 {
		metas, err := snaps.List()
		if err != nil || len(metas) == 0 {
			return 0
		}
		return metas[0].Index
	})
	if err := n.catchUpFromSnapshot(snaps); err != nil {
		return err
	}
	stream, err := newTLSStreamLayer(n.cfg.RaftAddr, n.cfg.Credentials, n.logger)
	if err != nil {
		return err
	}
	var layer raft.StreamLayer = stream
	if n.cfg.faultNet != nil {
		layer = &faultStream{StreamLayer: stream, net: n.cfg.faultNet, self: n.cfg.NodeID}
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 8, Timeout: 10 * time.Second, Logger: hlog,
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeID)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.HeartbeatTimeout / 2
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.TrailingLogs = n.cfg.TrailingLogs
	rc.BatchApplyCh = true
	// state.db persists applied entries itself, so Raft must not restore a
	// snapshot over it on every start. catchUpFromSnapshot covers a state.db
	// that is behind the newest snapshot.
	rc.NoSnapshotRestoreOnStart = true
	rc.Logger = hlog

	if err := n.bootstrapIfNew(rc, snaps); err != nil {
		return err
	}
	n.raft, err = raft.NewRaft(rc, n.fsm, n.store, n.store, snaps, n.trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	n.leaders.observe(n.raft, n.stopCh)
	n.logger.Info("raft started", "raft_addr", n.cfg.RaftAddr,
		"applied_index", n.fsm.LastApplied())
	return nil
}

// catchUpFromSnapshot restores the newest snapshot into state.db when the
// database is older than it, such as after state.db was lost.
func (n *Node) catchUpFromSnapshot(snaps raft.SnapshotStore) error {
	metas, err := snaps.List()
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	if len(metas) == 0 || metas[0].Index <= n.fsm.LastApplied() {
		return nil
	}
	meta, rc, err := snaps.Open(metas[0].ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", metas[0].ID, err)
	}
	n.logger.Info("state database is behind the newest snapshot, restoring",
		"snapshot", meta.ID, "snapshot_index", meta.Index, "applied_index", n.fsm.LastApplied())
	return n.fsm.RestoreAt(rc, meta.Index)
}

func (n *Node) bootstrapIfNew(rc *raft.Config, snaps raft.SnapshotStore) error {
	existing, err := raft.HasExistingState(n.store, n.store, snaps)
	if err != nil {
		return fmt.Errorf("inspect raft state: %w", err)
	}
	if existing || len(n.cfg.Peers) == 0 {
		return nil
	}
	var servers []raft.Server
	for _, p := range n.cfg.Peers {
		servers = append(servers, raft.Server{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(p.ID),
			Address:  raft.ServerAddress(p.RaftAddr),
		})
	}
	n.logger.Info("bootstrapping new cluster", "voters", len(servers))
	err = raft.BootstrapCluster(rc, n.store, n.store, snaps, n.trans, raft.Configuration{Servers: servers})
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap cluster: %w", err)
	}
	return nil
}

// ID returns the node's Raft server ID.
func (n *Node) ID() string { return n.cfg.NodeID }

// State returns the node's copy of the replicated state.
func (n *Node) State() *fsm.FSM { return n.fsm }

// Raft returns the underlying Raft instance, for status and membership.
func (n *Node) Raft() *raft.Raft { return n.raft }

// IsLeader reports whether this node is the Raft leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Shutdown stops Raft and closes the stores. It is safe to call twice.
func (n *Node) Shutdown() error {
	var err error
	n.shutdownOnce.Do(func() {
		close(n.stopCh)
		if n.gossip != nil {
			n.gossip.shutdown()
		}
		if n.raft != nil {
			err = n.raft.Shutdown().Error()
		}
		n.connMu.Lock()
		for _, c := range n.conns {
			_ = c.Close()
		}
		n.connMu.Unlock()
		if cerr := n.closeStores(); err == nil {
			err = cerr
		}
		n.logger.Info("raft stopped")
	})
	return err
}

func (n *Node) closeStores() error {
	var errs []error
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	if n.fsm != nil {
		errs = append(errs, n.fsm.Close())
	}
	return errors.Join(errs...)
}

// checkClusterIdentity ties a data directory to the cluster-internal CA it
// was first started with, so that a node given another cluster's data stops
// instead of mixing two clusters' logs.
func checkClusterIdentity(dataDir, caFingerprint string) error {
	path := filepath.Join(dataDir, "cluster-ca.sha256")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return os.WriteFile(path, []byte(caFingerprint+"\n"), 0o600)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if got := strings.TrimSpace(string(data)); got != caFingerprint {
		return fmt.Errorf("data directory %s belongs to the cluster whose internal CA has SHA-256 %s, "+
			"but tls.ca_file has %s: start this node with an empty data directory to join this cluster, "+
			"or give it the CA of the cluster the data belongs to", dataDir, got, caFingerprint)
	}
	return nil
}

func newHCLogger(logger *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "raft",
		Level:  hclog.Info,
		Output: newSlogWriter(logger),
	})
}
