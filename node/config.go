package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"time"

	"anchor/cluster"
	"anchor/hsm"
)

// Config is the node's configuration file, decoded strictly: an unknown key
// is an error. Secrets are never in it: the HSM PIN comes from hsm.pin_file or
// the variable named by hsm.pin_env.
type Config struct {
	NodeID  string `json:"node_id"`
	DataDir string `json:"data_dir"`
	// RaftAddr, GRPCAddr and HTTPAddr are host:port listen addresses. Other
	// nodes dial RaftAddr and GRPCAddr as given, so they must be reachable.
	RaftAddr string `json:"raft_addr"`
	GRPCAddr string `json:"grpc_addr"`
	// HTTPAddr serves OCSP, CRLs and CA certificates over plain HTTP, as
	// relying parties fetch them.
	HTTPAddr string `json:"http_addr"`
	// ACMEAddr serves ACME over HTTPS with acme.tls_cert_file.
	ACMEAddr string `json:"acme_addr"`
	// PublicURLs are the HTTP base URLs of all nodes, written into
	// certificates as OCSP, CRL and caIssuers locations.
	PublicURLs []string `json:"public_urls"`
	// Peers is the initial voter set of a new cluster, this node included.
	// Leave it empty on a node that joins a running cluster instead.
	Peers []cluster.Peer `json:"peers"`
	// Join lists gRPC addresses of running members; a node with no Raft
	// state asks them to add it. Used instead of peers.
	Join []string `json:"join,omitempty"`
	// Nonvoter joins as a non-voting member that serves reads (OCSP, CRL,
	// ACME) but does not count toward quorum.
	Nonvoter bool `json:"nonvoter,omitempty"`
	// Gossip configures memberlist discovery and health (recommended).
	Gossip *cluster.GossipConfig `json:"gossip,omitempty"`
	// DeadServerCleanup is how long a voter must be dead in gossip before
	// the leader removes it (never below three voters); "0s" or absent
	// disables it.
	DeadServerCleanup Duration   `json:"dead_server_cleanup,omitempty"`
	HSM               hsm.Config `json:"hsm"`
	// TLS names the node's mutual TLS credentials from the cluster-internal
	// CA, used for Raft and gRPC.
	TLS cluster.TLSConfig `json:"tls"`
	// Bootstrap, on one node of a new cluster, creates a first chain.
	Bootstrap *Bootstrap `json:"bootstrap,omitempty"`
	ACME      ACMEConfig `json:"acme"`
	// HeartbeatTimeout and ElectionTimeout as Go durations ("500ms");
	// both default to 500ms.
	HeartbeatTimeout Duration `json:"heartbeat_timeout,omitempty"`
	ElectionTimeout  Duration `json:"election_timeout,omitempty"`
	// CommitTimeout is how long the leader waits, when no new entry comes,
	// before it sends followers the commit index; default "10ms". A
	// revocation reaches the other nodes' OCSP within one to two of it.
	CommitTimeout Duration `json:"commit_timeout,omitempty"`
	// LeaderWait is how long a write waits for a reachable leader before it
	// fails with a no-leader error; default "3s".
	LeaderWait Duration `json:"leader_wait,omitempty"`
	// StateSync fsyncs the state database on every applied batch. By
	// default it is synced when the node stops, and a node whose machine
	// crashed rebuilds it from its newest snapshot and the Raft log, which
	// is always fsynced. Costs two fsyncs per batch on every node.
	StateSync bool `json:"state_sync,omitempty"`
	// SnapshotThreshold is the number of log entries between Raft
	// snapshots, checked every one to two SnapshotIntervals; defaults 8192
	// and "2m".
	// TrailingLogs entries stay in the log after a snapshot (default
	// 10240), so a follower that fell behind by fewer catches up from the
	// log instead of receiving the whole state.
	SnapshotThreshold uint64   `json:"snapshot_threshold,omitempty"`
	SnapshotInterval  Duration `json:"snapshot_interval,omitempty"`
	TrailingLogs      uint64   `json:"trailing_logs,omitempty"`
	// LogLevel is debug, info, warn or error; default info.
	LogLevel string `json:"log_level,omitempty"`
}

// Bootstrap names the organization, realm and chain that the bootstrap node
// creates on first start, with one EAB key for the chain.
type Bootstrap struct {
	Org   string `json:"org"`
	Realm string `json:"realm"`
	Chain string `json:"chain"`
	// EABFile receives the EAB key ID and HMAC key (mode 0600) once created.
	EABFile string `json:"eab_file"`
	// EABIdentifiers pre-authorizes orders of the EAB-bound account for these
	// names ("*.example.test" covers subdomains). Empty means challenges.
	EABIdentifiers []string `json:"eab_identifiers,omitempty"`
}

// ACMEConfig configures the ACME listener and validation networking.
type ACMEConfig struct {
	// TLSCertFile and TLSKeyFile are the PEM certificate chain and key of
	// the ACME HTTPS listener. Required.
	TLSCertFile string `json:"tls_cert_file"`
	TLSKeyFile  string `json:"tls_key_file"`
	// HTTP01Port is the port http-01 validation connects to; default 80.
	HTTP01Port int `json:"http01_port,omitempty"`
	// TLSALPN01Port is the port tls-alpn-01 validation connects to; default 443.
	TLSALPN01Port int `json:"tlsalpn01_port,omitempty"`
	// DNSResolver is the host:port of the DNS server for dns-01 and for
	// resolving names during validation; empty uses the system resolver.
	DNSResolver string `json:"dns_resolver,omitempty"`
}

// Duration is a time.Duration written as a Go duration string in JSON.
type Duration time.Duration

// UnmarshalJSON parses "500ms", "2s" and the like.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"500ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

// Validate checks every required field and address.
func (c *Config) Validate() error {
	for field, v := range map[string]string{
		"node_id": c.NodeID, "data_dir": c.DataDir, "raft_addr": c.RaftAddr,
		"grpc_addr": c.GRPCAddr, "http_addr": c.HTTPAddr, "acme_addr": c.ACMEAddr,
		"acme.tls_cert_file": c.ACME.TLSCertFile, "acme.tls_key_file": c.ACME.TLSKeyFile,
		"hsm.module_path": c.HSM.ModulePath, "hsm.token_label": c.HSM.TokenLabel,
		"tls.ca_file": c.TLS.CAFile, "tls.cert_file": c.TLS.CertFile, "tls.key_file": c.TLS.KeyFile,
	} {
		if v == "" {
			return fmt.Errorf("%s is required", field)
		}
	}
	for field, v := range map[string]string{
		"raft_addr": c.RaftAddr, "grpc_addr": c.GRPCAddr, "http_addr": c.HTTPAddr, "acme_addr": c.ACMEAddr,
	} {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("%s %q is not host:port: %w", field, v, err)
		}
	}
	if c.HSM.PINFile == "" && c.HSM.PINEnv == "" {
		return fmt.Errorf("hsm.pin_file or hsm.pin_env is required")
	}
	if len(c.PublicURLs) == 0 {
		return fmt.Errorf("public_urls needs at least one URL")
	}
	if len(c.Peers) > 0 && len(c.Join) > 0 {
		return fmt.Errorf("set either peers (a new cluster) or join (a running cluster), not both")
	}
	if g := c.Gossip; g != nil && (g.Addr == "" || g.KeyFile == "") {
		return fmt.Errorf("gossip needs addr and key_file")
	}
	if b := c.Bootstrap; b != nil && (b.Org == "" || b.Realm == "" || b.Chain == "") {
		return fmt.Errorf("bootstrap needs org, realm and chain")
	}
	// Raft rejects a shorter interval when the node starts.
	if v := time.Duration(c.SnapshotInterval); v != 0 && v < 5*time.Millisecond {
		return fmt.Errorf("snapshot_interval %q is below the minimum of 5ms", v)
	}
	return nil
}

func (c *Config) clusterConfig(creds *cluster.Credentials) cluster.Config {
	return cluster.Config{
		Credentials:       creds,
		NodeID:            c.NodeID,
		DataDir:           c.DataDir,
		RaftAddr:          c.RaftAddr,
		GRPCAddr:          c.GRPCAddr,
		Peers:             c.Peers,
		HeartbeatTimeout:  time.Duration(c.HeartbeatTimeout),
		CommitTimeout:     time.Duration(c.CommitTimeout),
		ElectionTimeout:   time.Duration(c.ElectionTimeout),
		LeaderWait:        time.Duration(c.LeaderWait),
		SnapshotThreshold: c.SnapshotThreshold,
		SnapshotInterval:  time.Duration(c.SnapshotInterval),
		TrailingLogs:      c.TrailingLogs,
		StateSync:         c.StateSync,
		Gossip:            c.Gossip,
		DeadServerCleanup: time.Duration(c.DeadServerCleanup),
	}
}
