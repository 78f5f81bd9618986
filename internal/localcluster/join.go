package localcluster

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"anchor/cluster"
	"anchor/internal/freeport"
	"anchor/node"
	softhsmtest "anchor/softhsm-test"
)

// AddJoiner lays out one more node, which joins the running cluster through
// the gRPC addresses of the nodes laid out before it. The node gets the next
// number after node 1's ID prefix, a new SoftHSM2 token and a node
// certificate from the internal CA. Its configuration is node 1's, with join
// in place of peers and without bootstrap. AddJoiner appends the node to
// l.Nodes and returns its index.
//
// layout.json is not rewritten, so Prepare on the same DataDir later returns
// the initial nodes only.
func (l *Layout) AddJoiner(nonvoter bool) (int, error) {
	base, err := node.LoadConfig(l.Nodes[0].ConfigPath)
	if err != nil {
		return 0, fmt.Errorf("read node 1's configuration: %w", err)
	}
	host, _, err := net.SplitHostPort(l.Nodes[0].RaftAddr)
	if err != nil {
		return 0, fmt.Errorf("host of %s: %w", l.Nodes[0].RaftAddr, err)
	}
	const portsPerNode = 5
	ports, err := freeport.Take(host, portsPerNode)
	if err != nil {
		return 0, err
	}
	i := len(l.Nodes)
	id := strings.TrimSuffix(l.Nodes[0].ID, "1") + strconv.Itoa(i+1)
	dir := filepath.Join(l.DataDir, id)
	addr := func(k int) string { return net.JoinHostPort(host, strconv.Itoa(ports[k])) }
	nl := NodeLayout{
		ID: id, Dir: dir,
		ConfigPath: filepath.Join(dir, "node.json"),
		LogPath:    filepath.Join(dir, "node.log"),
		RaftAddr:   addr(0), GRPCAddr: addr(1), HTTPAddr: addr(2), ACMEAddr: addr(3),
		GossipAddr: addr(4),
	}

	caDir := filepath.Join(l.DataDir, "internal-ca")
	internal, err := cluster.LoadInternalCA(caDir)
	if err != nil {
		return 0, fmt.Errorf("load internal CA from %s: %w", caDir, err)
	}
	tlsCfg, err := internal.IssueNode(caDir, filepath.Join(dir, "tls"), id, []string{host})
	if err != nil {
		return 0, err
	}
	acmeTLS, err := internal.IssueServer(caDir, filepath.Join(dir, "acme-tls"), id,
		[]string{host, "localhost"})
	if err != nil {
		return 0, err
	}
	tok, err := softhsmtest.NewToken(filepath.Join(dir, "hsm"), "anchor-"+id)
	if err != nil {
		return 0, fmt.Errorf("create SoftHSM2 token for %s: %w", id, err)
	}

	cfg := *base
	cfg.NodeID, cfg.DataDir = id, filepath.Join(dir, "state")
	cfg.RaftAddr, cfg.GRPCAddr = nl.RaftAddr, nl.GRPCAddr
	cfg.HTTPAddr, cfg.ACMEAddr = nl.HTTPAddr, nl.ACMEAddr
	cfg.HSM, cfg.TLS = tok.HSMConfig(), tlsCfg
	cfg.ACME.TLSCertFile, cfg.ACME.TLSKeyFile = acmeTLS.CertFile, acmeTLS.KeyFile
	cfg.Peers, cfg.Bootstrap, cfg.Nonvoter = nil, nil, nonvoter
	cfg.Join = nil
	for _, p := range l.Nodes {
		cfg.Join = append(cfg.Join, p.GRPCAddr)
	}
	cfg.PublicURLs = append(append([]string(nil), base.PublicURLs...), "http://"+nl.HTTPAddr)
	if base.Gossip != nil {
		g := *base.Gossip
		g.Addr = nl.GossipAddr
		g.Seeds = append(append([]string(nil), base.Gossip.Seeds...), nl.GossipAddr)
		cfg.Gossip = &g
	}
	if err := writeJSON(nl.ConfigPath, cfg, 0o600); err != nil {
		return 0, err
	}
	l.Nodes = append(l.Nodes, nl)
	return i, nil
}

// AddJoiner lays out a joining node with Layout.AddJoiner and starts it. It
// returns the node's index once the process runs, and the node then joins
// by itself.
func (c *Cluster) AddJoiner(nonvoter bool) (int, error) {
	c.mu.Lock()
	i, err := c.Layout.AddJoiner(nonvoter)
	if err == nil {
		c.procs = append(c.procs, nil)
		c.done = append(c.done, nil)
	}
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return i, c.StartNode(i)
}
