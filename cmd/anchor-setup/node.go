package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"anchor/cluster"
	"anchor/hsm"
	"anchor/node"
)

// Ports inside each container. Other nodes dial a node at its ID, which is
// its host name on the compose network.
const (
	raftPort   = 7000
	grpcPort   = 7001
	httpPort   = 8080
	acmePort   = 8443
	gossipPort = 7946
)

// nodeOptions are the flags of anchor-setup node.
type nodeOptions struct {
	id             string
	nodes          listFlag
	publicURLs     listFlag
	bootstrap      bool
	eabIdentifiers listFlag
	hsmDir         string
	tlsDir         string
	dataDir        string
	modulePath     string
	logLevel       string
	http01Port     int
}

func runNode(args []string, stderr io.Writer) error {
	var o nodeOptions
	fs := newFlagSet("node", stderr)
	fs.StringVar(&o.id, "id", "", "this node's ID, which is also its host name (required)")
	fs.Var(&o.nodes, "nodes", "comma-separated IDs of all initial nodes, this one included (required)")
	fs.Var(&o.publicURLs, "public-urls", "comma-separated HTTP base URLs of all nodes, written "+
		"into certificates as OCSP, CRL and caIssuers locations (required)")
	fs.BoolVar(&o.bootstrap, "bootstrap", false,
		"create the chain default/default/default and its EAB key on first start")
	fs.Var(&o.eabIdentifiers, "eab-identifiers", "comma-separated names that the bootstrap EAB "+
		"key pre-authorizes (\"*.example.test\" covers subdomains)")
	fs.StringVar(&o.hsmDir, "hsm-dir", "/var/lib/anchor/hsm",
		"directory of the SoftHSM2 token, its configuration and its PIN files")
	fs.StringVar(&o.tlsDir, "tls-dir", "/var/lib/anchor/tls",
		"directory with the certificates that anchor-setup certs issued for this node")
	fs.StringVar(&o.dataDir, "data-dir", "/var/lib/anchor/data",
		"directory for node.json, the replicated state and the bootstrap EAB file")
	fs.StringVar(&o.modulePath, "module", "/usr/lib/softhsm/libsofthsm2.so",
		"SoftHSM2 PKCS#11 module")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.IntVar(&o.http01Port, "http01-port", 0, "port that http-01 validation connects to (0: 80)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return err
	}
	tok, err := openOrInitToken(o.hsmDir, o.modulePath, "anchor-"+o.id, stderr)
	if err != nil {
		return err
	}
	cfg := o.config(tok)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("generated configuration is invalid: %w", err)
	}
	return writeConfig(filepath.Join(o.dataDir, "node.json"), cfg)
}

func (o *nodeOptions) validate() error {
	switch {
	case o.id == "":
		return errors.New("-id is required")
	case len(o.nodes) == 0:
		return errors.New("-nodes is required")
	case !slices.Contains(o.nodes, o.id):
		return fmt.Errorf("-nodes %v does not contain this node %q", o.nodes, o.id)
	case len(o.publicURLs) == 0:
		return errors.New("-public-urls is required")
	}
	return nil
}

// config builds the node's configuration: Raft and gRPC listen on the
// node's host name, so that the address it binds is the address the other
// nodes dial; HTTP and ACME listen on every interface, so that published
// ports and clients inside the container reach them.
func (o *nodeOptions) config(tok hsm.Config) *node.Config {
	cfg := &node.Config{
		NodeID:     o.id,
		DataDir:    filepath.Join(o.dataDir, "state"),
		RaftAddr:   hostPort(o.id, raftPort),
		GRPCAddr:   hostPort(o.id, grpcPort),
		HTTPAddr:   hostPort("0.0.0.0", httpPort),
		ACMEAddr:   hostPort("0.0.0.0", acmePort),
		PublicURLs: o.publicURLs,
		HSM:        tok,
		TLS: cluster.TLSConfig{
			CAFile:   filepath.Join(o.tlsDir, caCertName),
			CertFile: filepath.Join(o.tlsDir, nodeCertName),
			KeyFile:  filepath.Join(o.tlsDir, "node-key.pem"),
		},
		ACME: node.ACMEConfig{
			TLSCertFile: filepath.Join(o.tlsDir, serverCertName),
			TLSKeyFile:  filepath.Join(o.tlsDir, "server-key.pem"),
			HTTP01Port:  o.http01Port,
		},
		LogLevel: o.logLevel,
	}
	cfg.Gossip = &cluster.GossipConfig{
		Addr: hostPort(o.id, gossipPort), KeyFile: filepath.Join(o.tlsDir, gossipKeyName),
	}
	for _, id := range o.nodes {
		cfg.Peers = append(cfg.Peers, cluster.Peer{
			ID: id, RaftAddr: hostPort(id, raftPort), GRPCAddr: hostPort(id, grpcPort),
		})
		cfg.Gossip.Seeds = append(cfg.Gossip.Seeds, hostPort(id, gossipPort))
	}
	if o.bootstrap {
		cfg.Bootstrap = &node.Bootstrap{
			Org: "default", Realm: "default", Chain: "default",
			EABFile:        filepath.Join(o.dataDir, "bootstrap-eab.json"),
			EABIdentifiers: o.eabIdentifiers,
		}
	}
	return cfg
}

func hostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// writeConfig writes cfg atomically, so that a node never reads half a file.
func writeConfig(path string, cfg *node.Config) error {
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode configuration: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write configuration: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write configuration: %w", err)
	}
	return nil
}
