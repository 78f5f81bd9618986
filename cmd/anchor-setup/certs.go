package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"anchor/cluster"
)

// File names that anchor-setup certs writes into each node's TLS directory
// and the admin directory. IssueNode, IssueServer and IssueAdmin choose the
// certificate and key names.
const (
	caCertName     = "ca.pem"
	nodeCertName   = "node.pem"
	serverCertName = "server.pem"
	adminCertName  = "admin.pem"
	gossipKeyName  = "gossip.key"
)

// certsOptions are the flags of anchor-setup certs.
type certsOptions struct {
	caDir, tlsDir, adminDir string
	clusterName             string
	nodes                   listFlag
	acmeHosts               listFlag
}

func runCerts(args []string, stderr io.Writer) error {
	var o certsOptions
	fs := newFlagSet("certs", stderr)
	fs.StringVar(&o.caDir, "ca-dir", "/var/lib/anchor-ca",
		"directory of the internal CA's certificate and private key")
	fs.StringVar(&o.tlsDir, "tls-dir", "/var/lib/anchor-tls",
		"directory with one subdirectory per node for its certificates")
	fs.StringVar(&o.adminDir, "admin-dir", "/var/lib/anchor-admin",
		"directory for the admin client certificate of anchorctl")
	fs.StringVar(&o.clusterName, "cluster-name", "anchor", "name in the internal CA's subject")
	fs.Var(&o.nodes, "nodes", "comma-separated node IDs, which are also their host names")
	fs.Var(&o.acmeHosts, "acme-hosts", "comma-separated extra host names and IP addresses "+
		"of the ACME HTTPS certificates, besides the node's own name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(o.nodes) == 0 {
		return errors.New("-nodes is required")
	}
	return writeCerts(o, stderr)
}

// writeCerts creates or loads the internal CA and issues what is missing.
func writeCerts(o certsOptions, out io.Writer) error {
	ca, err := cluster.CreateInternalCA(o.caDir, o.clusterName)
	if err != nil {
		return fmt.Errorf("create internal CA in %s: %w", o.caDir, err)
	}
	caPEM, err := os.ReadFile(cluster.CACertFile(o.caDir))
	if err != nil {
		return fmt.Errorf("read internal CA certificate: %w", err)
	}
	gossipKey, err := gossipKey(filepath.Join(o.caDir, gossipKeyName))
	if err != nil {
		return err
	}
	for _, id := range o.nodes {
		dir := filepath.Join(o.tlsDir, id)
		if err := issueNodeCerts(ca, o, id, dir, out); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, gossipKeyName), gossipKey, 0o600); err != nil {
			return fmt.Errorf("write gossip key for %s: %w", id, err)
		}
		if err := writePublic(filepath.Join(dir, caCertName), caPEM); err != nil {
			return err
		}
	}
	if !exists(filepath.Join(o.adminDir, adminCertName)) {
		if _, err := ca.IssueAdmin(o.caDir, o.adminDir, "compose-admin", "cluster-admin"); err != nil {
			return fmt.Errorf("issue admin certificate: %w", err)
		}
		fmt.Fprintf(out, "issued admin certificate in %s\n", o.adminDir)
	}
	return writePublic(filepath.Join(o.adminDir, caCertName), caPEM)
}

// issueNodeCerts issues the node certificate (mutual TLS between nodes) and
// the ACME HTTPS server certificate of one node, unless they exist.
func issueNodeCerts(ca *cluster.InternalCA, o certsOptions, id, dir string, out io.Writer) error {
	if !exists(filepath.Join(dir, nodeCertName)) {
		if _, err := ca.IssueNode(o.caDir, dir, id, []string{id}); err != nil {
			return fmt.Errorf("issue node certificate for %s: %w", id, err)
		}
		fmt.Fprintf(out, "issued node certificate for %s\n", id)
	}
	if !exists(filepath.Join(dir, serverCertName)) {
		hosts := append([]string{id}, o.acmeHosts...)
		if _, err := ca.IssueServer(o.caDir, dir, id, hosts); err != nil {
			return fmt.Errorf("issue ACME server certificate for %s: %w", id, err)
		}
		fmt.Fprintf(out, "issued ACME server certificate for %s, valid for %v\n", id, hosts)
	}
	return nil
}

// gossipKey reads the cluster's memberlist key from path, creating it (the
// base64 of 32 random bytes, mode 0600) on the first run.
func gossipKey(path string) ([]byte, error) {
	if data, err := os.ReadFile(path); err == nil {
		return data, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	data := []byte(base64.StdEncoding.EncodeToString(key) + "\n")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("write gossip key: %w", err)
	}
	return data, nil
}

func writePublic(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
