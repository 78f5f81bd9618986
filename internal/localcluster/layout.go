package localcluster

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"anchor/cluster"
	"anchor/fsm"
	"anchor/internal/freeport"
	"anchor/node"
	softhsmtest "anchor/softhsm-test"
)

// Bootstrap names of the first chain.
const (
	DefaultOrg   = "default"
	DefaultRealm = "default"
	DefaultChain = "default"
)

// Options describe the cluster to lay out.
type Options struct {
	// DataDir holds one directory per node and cluster.json.
	DataDir string
	// Nodes is the number of nodes, 3 or 5 usually.
	Nodes int
	// Host is the loopback address the nodes bind; default 127.0.0.1.
	Host string
	// HTTP01Port is the port the nodes' http-01 validation connects to.
	HTTP01Port int
	// EABIdentifiers pre-authorizes the bootstrap EAB key for these names.
	EABIdentifiers []string
}

// NodeLayout is where one node's files and addresses are.
type NodeLayout struct {
	ID         string `json:"id"`
	Dir        string `json:"dir"`
	ConfigPath string `json:"config"`
	LogPath    string `json:"log"`
	RaftAddr   string `json:"raft_addr"`
	GRPCAddr   string `json:"grpc_addr"`
	HTTPAddr   string `json:"http_addr"`
	ACMEAddr   string `json:"acme_addr"`
	GossipAddr string `json:"gossip_addr"`
}

// Layout is a prepared cluster: tokens created and configuration written.
type Layout struct {
	DataDir string `json:"data_dir"`
	// AdminTLS is the cluster-admin client certificate for anchorctl.
	AdminTLS cluster.TLSConfig `json:"admin_tls"`
	// InternalCACert is the cluster-internal CA certificate, which ACME
	// clients need to trust the nodes' HTTPS listeners.
	InternalCACert string       `json:"internal_ca_cert"`
	ChainID        string       `json:"chain_id"`
	Nodes          []NodeLayout `json:"nodes"`
	EABFile        string       `json:"eab_file"`
}

// Prepare creates the node directories, SoftHSM2 tokens and configuration
// files, or reuses those of an earlier run in the same DataDir.
func Prepare(opts Options) (*Layout, error) {
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	layoutPath := filepath.Join(dataDir, "layout.json")
	if l, err := readLayout(layoutPath); err == nil {
		if len(l.Nodes) != opts.Nodes {
			return nil, fmt.Errorf("%s holds a %d-node cluster, not %d: use another DATA_DIR",
				dataDir, len(l.Nodes), opts.Nodes)
		}
		return l, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}

	l := &Layout{
		DataDir: dataDir,
		ChainID: fsm.ChainID(DefaultOrg, DefaultRealm, DefaultChain),
		EABFile: filepath.Join(dataDir, "node1", "bootstrap-eab.json"),
	}
	const portsPerNode = 5
	ports, err := freeport.Take(opts.Host, portsPerNode*opts.Nodes)
	if err != nil {
		return nil, err
	}
	for i := 0; i < opts.Nodes; i++ {
		id := "node" + strconv.Itoa(i+1)
		dir := filepath.Join(dataDir, id)
		l.Nodes = append(l.Nodes, NodeLayout{
			ID: id, Dir: dir,
			ConfigPath: filepath.Join(dir, "node.json"),
			LogPath:    filepath.Join(dir, "node.log"),
			RaftAddr:   net.JoinHostPort(opts.Host, strconv.Itoa(ports[portsPerNode*i])),
			GRPCAddr:   net.JoinHostPort(opts.Host, strconv.Itoa(ports[portsPerNode*i+1])),
			HTTPAddr:   net.JoinHostPort(opts.Host, strconv.Itoa(ports[portsPerNode*i+2])),
			ACMEAddr:   net.JoinHostPort(opts.Host, strconv.Itoa(ports[portsPerNode*i+3])),
			GossipAddr: net.JoinHostPort(opts.Host, strconv.Itoa(ports[portsPerNode*i+4])),
		})
	}
	if err := writeGossipKey(filepath.Join(dataDir, "gossip.key")); err != nil {
		return nil, err
	}
	caDir := filepath.Join(dataDir, "internal-ca")
	internal, err := cluster.CreateInternalCA(caDir, "local")
	if err != nil {
		return nil, fmt.Errorf("create internal CA: %w", err)
	}
	l.InternalCACert = cluster.CACertFile(caDir)
	l.AdminTLS, err = internal.IssueAdmin(caDir, filepath.Join(dataDir, "admin"), "local-admin", "cluster-admin")
	if err != nil {
		return nil, err
	}
	for i := range l.Nodes {
		tlsCfg, err := internal.IssueNode(caDir, filepath.Join(l.Nodes[i].Dir, "tls"), l.Nodes[i].ID,
			[]string{opts.Host})
		if err != nil {
			return nil, err
		}
		acmeTLS, err := internal.IssueServer(caDir, filepath.Join(l.Nodes[i].Dir, "acme-tls"),
			l.Nodes[i].ID, []string{opts.Host, "localhost"})
		if err != nil {
			return nil, err
		}
		if err := writeNodeConfig(l, i, opts, tlsCfg, acmeTLS); err != nil {
			return nil, err
		}
	}
	return l, writeJSON(layoutPath, l, 0o600)
}

func writeNodeConfig(l *Layout, i int, opts Options, tlsCfg, acmeTLS cluster.TLSConfig) error {
	nl := l.Nodes[i]
	tok, err := softhsmtest.NewToken(filepath.Join(nl.Dir, "hsm"), "anchor-"+nl.ID)
	if err != nil {
		return fmt.Errorf("create SoftHSM2 token for %s: %w", nl.ID, err)
	}
	cfg := node.Config{
		NodeID: nl.ID, DataDir: filepath.Join(nl.Dir, "state"),
		RaftAddr: nl.RaftAddr, GRPCAddr: nl.GRPCAddr, HTTPAddr: nl.HTTPAddr, ACMEAddr: nl.ACMEAddr,
		HSM: tok.HSMConfig(),
		TLS: tlsCfg,
		ACME: node.ACMEConfig{
			TLSCertFile: acmeTLS.CertFile, TLSKeyFile: acmeTLS.KeyFile, HTTP01Port: opts.HTTP01Port,
		},
	}
	cfg.Gossip = &cluster.GossipConfig{Addr: nl.GossipAddr, KeyFile: filepath.Join(l.DataDir, "gossip.key")}
	for _, p := range l.Nodes {
		cfg.Gossip.Seeds = append(cfg.Gossip.Seeds, p.GossipAddr)
		cfg.PublicURLs = append(cfg.PublicURLs, "http://"+p.HTTPAddr)
		cfg.Peers = append(cfg.Peers, cluster.Peer{ID: p.ID, RaftAddr: p.RaftAddr, GRPCAddr: p.GRPCAddr})
	}
	if i == 0 {
		cfg.Bootstrap = &node.Bootstrap{
			Org: DefaultOrg, Realm: DefaultRealm, Chain: DefaultChain,
			EABFile: l.EABFile, EABIdentifiers: opts.EABIdentifiers,
		}
	}
	return writeJSON(nl.ConfigPath, cfg, 0o600)
}

// SoftHSMConf returns the softhsm2.conf of node i, which its process needs in
// SOFTHSM2_CONF.
func (l *Layout) SoftHSMConf(i int) string {
	return filepath.Join(l.Nodes[i].Dir, "hsm", "softhsm2.conf")
}

// writeGossipKey writes a random 32-byte memberlist key, base64, mode 0600.
func writeGossipKey(path string) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
}

func readLayout(path string) (*Layout, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var l Layout
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &l, nil
}

func writeJSON(path string, v any, mode os.FileMode) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), mode)
}
