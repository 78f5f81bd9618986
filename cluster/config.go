package cluster

import (
	"fmt"
	"time"
)

// Peer is a member of the initial cluster configuration.
type Peer struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	GRPCAddr string `json:"grpc_addr"`
}

// Config configures a node's Raft membership.
type Config struct {
	// NodeID is the node's stable Raft server ID.
	NodeID string `json:"node_id"`
	// DataDir holds raft.db (log and stable store), snapshots/ and state.db.
	DataDir string `json:"-"`
	// RaftAddr is the TCP address the Raft transport binds and advertises.
	RaftAddr string `json:"raft_addr"`
	// GRPCAddr is the address other nodes use to forward writes to this node.
	GRPCAddr string `json:"grpc_addr"`
	// Peers is the initial voter set, this node included. A node with no Raft
	// state bootstraps the cluster with it; every initial node must be given
	// the same list.
	Peers []Peer `json:"peers"`
	// HeartbeatTimeout and ElectionTimeout bound how long followers wait for
	// a leader before an election. Default 500ms each, which elects a new
	// leader in about one second on a LAN.
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout"`
	ElectionTimeout  time.Duration `json:"election_timeout"`
	// CommitTimeout is how long the leader waits, when no new entry comes,
	// before it sends followers the commit index so that they apply the
	// last entries. Raft staggers it up to twice that. Default 10ms, where
	// hashicorp/raft's own default of 50ms left followers' OCSP responders
	// stating a revocation 50 to 100ms after the revoking write returned.
	CommitTimeout time.Duration `json:"commit_timeout"`
	// ApplyTimeout bounds a write, forwarding included. Default 10s.
	ApplyTimeout time.Duration `json:"apply_timeout"`
	// LeaderWait is how long a write waits for a reachable leader before it
	// fails with NoLeaderError. Default 3s, several election timeouts.
	LeaderWait time.Duration `json:"leader_wait"`
	// SnapshotThreshold is the number of log entries between snapshots.
	// Default 8192.
	SnapshotThreshold uint64 `json:"snapshot_threshold"`
	// SnapshotInterval sets how often Raft checks whether SnapshotThreshold
	// entries have accumulated: after a random wait between one and two
	// intervals. Default 2m, Raft's own default.
	SnapshotInterval time.Duration `json:"snapshot_interval"`
	// TrailingLogs is the number of entries kept in the log after a
	// snapshot, so that a follower that fell behind by fewer catches up
	// without receiving the whole snapshot. Default 10240, Raft's own
	// default.
	TrailingLogs uint64 `json:"trailing_logs"`
	// StateSync fsyncs state.db on every applied batch. Without it state.db
	// is synced when the node stops cleanly, and after a machine crash the
	// node rebuilds it from its newest snapshot and the Raft log, which is
	// fsynced either way (see fsm.Options).
	StateSync bool `json:"state_sync"`
	// Credentials authenticate Raft and gRPC traffic between nodes with
	// mutual TLS. Required.
	Credentials *Credentials `json:"-"`
	// Gossip enables memberlist discovery and health; nil disables it, and
	// then every member counts as alive in quorum checks.
	Gossip *GossipConfig `json:"gossip,omitempty"`
	// DeadServerCleanup is how long a voter must be dead in gossip before the
	// leader removes it, which it does only when at least three voters
	// remain and the alive ones still form a quorum. Zero disables it.
	DeadServerCleanup time.Duration `json:"dead_server_cleanup"`

	faultNet *faultNet // set only by partition tests
}

func (c *Config) setDefaults() {
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 500 * time.Millisecond
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = 500 * time.Millisecond
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = 10 * time.Millisecond
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	if c.LeaderWait == 0 {
		c.LeaderWait = 3 * time.Second
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 2 * time.Minute
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
}

// Validate checks the fields a node cannot start without.
func (c *Config) Validate() error {
	switch {
	case c.NodeID == "":
		return fmt.Errorf("cluster config: node_id is required")
	case c.DataDir == "":
		return fmt.Errorf("cluster config: data directory is required")
	case c.RaftAddr == "":
		return fmt.Errorf("cluster config: raft_addr is required")
	case c.GRPCAddr == "":
		return fmt.Errorf("cluster config: grpc_addr is required")
	case c.Credentials == nil:
		return fmt.Errorf("cluster config: TLS credentials are required")
	case c.Credentials.NodeID() != c.NodeID:
		return fmt.Errorf("cluster config: TLS certificate names node %q, not node_id %q",
			c.Credentials.NodeID(), c.NodeID)
	}
	seen := map[string]bool{}
	for _, p := range c.Peers {
		if p.ID == "" || p.RaftAddr == "" || p.GRPCAddr == "" {
			return fmt.Errorf("cluster config: peer %+v needs id, raft_addr and grpc_addr", p)
		}
		if seen[p.ID] {
			return fmt.Errorf("cluster config: peer %q is listed twice", p.ID)
		}
		seen[p.ID] = true
	}
	if len(c.Peers) > 0 && !seen[c.NodeID] {
		return fmt.Errorf("cluster config: peers do not include this node %q", c.NodeID)
	}
	return nil
}
