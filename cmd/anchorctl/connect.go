package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"anchor/cluster"
)

// tlsFlags are the admin credential files as flags set them.
type tlsFlags struct {
	cert, key, ca string
}

// target is the address set anchorctl connects to, with the admin
// credentials to present. It is the one address of --addr or ANCHOR_ADDR,
// or several addresses tried in order: a comma-separated --addr or
// ANCHOR_ADDR, or else the connection file's admin addresses.
type target struct {
	addr string
	// nodeAddrs are the addresses tried in order, set only when addr is
	// empty.
	nodeAddrs []string
	// source names where nodeAddrs come from, for errors.
	source string
	tls    cluster.TLSConfig
}

// connectionFile is the part of data/cluster.json (internal/localcluster
// Info) that anchorctl reads.
type connectionFile struct {
	AdminTLS cluster.TLSConfig `json:"admin_tls"`
	Nodes    []struct {
		AdminAddr string `json:"admin_addr"`
	} `json:"nodes"`
}

// adminAddrs returns the nodes' admin addresses in file order.
func (f *connectionFile) adminAddrs() []string {
	var addrs []string
	for _, n := range f.Nodes {
		if n.AdminAddr != "" {
			addrs = append(addrs, n.AdminAddr)
		}
	}
	return addrs
}

// resolveTarget takes each setting from its flag, else from its
// environment variable, else from the connection file.
func (a *app) resolveTarget() (*target, error) {
	t := &target{
		addr: first(a.addr, a.env("ANCHOR_ADDR")),
		tls: cluster.TLSConfig{
			CertFile: first(a.tls.cert, a.env("ANCHOR_TLS_CERT")),
			KeyFile:  first(a.tls.key, a.env("ANCHOR_TLS_KEY")),
			CAFile:   first(a.tls.ca, a.env("ANCHOR_TLS_CA")),
		},
	}
	if strings.Contains(t.addr, ",") {
		for _, a := range strings.Split(t.addr, ",") {
			if a = strings.TrimSpace(a); a != "" {
				t.nodeAddrs = append(t.nodeAddrs, a)
			}
		}
		t.addr, t.source = "", "--addr or ANCHOR_ADDR"
		if len(t.nodeAddrs) == 0 {
			return nil, usagef("--addr or ANCHOR_ADDR lists no address: give host:port, or several separated by commas")
		}
	}
	if (t.addr != "" || len(t.nodeAddrs) > 0) && t.tls.CertFile != "" && t.tls.KeyFile != "" && t.tls.CAFile != "" {
		return t, nil
	}
	info, err := readConnectionFile(a.connFile)
	if err != nil {
		return nil, missingSettingsError(t, a.connFile, err)
	}
	if t.addr == "" && len(t.nodeAddrs) == 0 {
		t.nodeAddrs = info.adminAddrs()
		t.source = "connection file " + displayPath(a.connFile)
	}
	t.tls.CertFile = first(t.tls.CertFile, info.AdminTLS.CertFile)
	t.tls.KeyFile = first(t.tls.KeyFile, info.AdminTLS.KeyFile)
	t.tls.CAFile = first(t.tls.CAFile, info.AdminTLS.CAFile)
	return t, nil
}

// missingSettingsError explains a connection file that cannot be read
// while flags and environment leave the address or credentials unset.
func missingSettingsError(t *target, path string, err error) error {
	var pathErr *fs.PathError
	if !errors.As(err, &pathErr) {
		return usageError{err}
	}
	problem := fmt.Sprintf("cannot read connection file %s: %v", displayPath(path), pathErr.Err)
	if errors.Is(err, fs.ErrNotExist) {
		problem = fmt.Sprintf("connection file %s does not exist", displayPath(path))
	}
	if t.addr == "" && len(t.nodeAddrs) == 0 {
		return usagef("no node address: %s: set --addr or ANCHOR_ADDR, or set --connection "+
			"to the cluster.json that `make run` writes into its data directory "+
			"(data/cluster.json in the repository root)", problem)
	}
	return usagef("admin credentials missing: %s: set --tls-cert, --tls-key and --tls-ca or "+
		"ANCHOR_TLS_CERT, ANCHOR_TLS_KEY and ANCHOR_TLS_CA", problem)
}

// displayPath returns path, followed by its absolute form when it is
// relative, so that a message shows which working directory it was read in.
func displayPath(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	return fmt.Sprintf("%s (%s)", path, abs)
}

func readConnectionFile(path string) (*connectionFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var info connectionFile
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("connection file %s: %w", path, err)
	}
	if len(info.adminAddrs()) == 0 {
		return nil, fmt.Errorf("connection file %s lists no node with an admin_addr", path)
	}
	return &info, nil
}

func first(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// loadCredentials reads the admin certificate, key and internal CA files.
func loadCredentials(tlsCfg cluster.TLSConfig) (*cluster.Credentials, error) {
	creds, err := cluster.LoadCredentials(tlsCfg)
	if err != nil {
		return nil, usageError{fmt.Errorf("load admin credentials: %w", err)}
	}
	return creds, nil
}

// dial prepares a connection to addr with mutual TLS. The node's
// certificate must be a node certificate of the same internal CA. No
// connection is made until the first call.
func dial(addr string, tlsCfg cluster.TLSConfig) (*grpc.ClientConn, error) {
	creds, err := loadCredentials(tlsCfg)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(credentials.NewTLS(creds.ClientConfig())))
	if err != nil {
		return nil, usagef("invalid node address %q: %v", addr, err)
	}
	return conn, nil
}
