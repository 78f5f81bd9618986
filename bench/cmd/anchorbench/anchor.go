package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	anchorv1 "anchor/api/anchorv1"
	"anchor/bench/acmeload"
	"anchor/cluster"
	"anchor/internal/localcluster"
)

// benchDomain is the domain that the benchmark's EAB keys pre-authorize.
const benchDomain = "bench.test"

// anchorCluster is a running local cluster of anchor-node processes.
type anchorCluster struct {
	*localcluster.Cluster
	Info *localcluster.Info
}

// startAnchor lays out and starts an n-node cluster under dir and waits
// until every node holds every CA key.
func startAnchor(ctx context.Context, c *common, dir string, n int) (*anchorCluster, error) {
	layout, err := localcluster.Prepare(localcluster.Options{
		DataDir: dir, Nodes: n, EABIdentifiers: []string{"*." + benchDomain},
	})
	if err != nil {
		return nil, fmt.Errorf("prepare %d-node cluster: %w", n, err)
	}
	lc, err := localcluster.Start(layout, c.nodeBin)
	if err != nil {
		return nil, fmt.Errorf("start %d-node cluster: %w", n, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	info, err := lc.WaitReady(ctx)
	if err != nil {
		_ = lc.Stop()
		return nil, fmt.Errorf("%d-node cluster not ready: %w", n, err)
	}
	c.logger.Info("anchor cluster ready", "nodes", n, "dir", dir)
	return &anchorCluster{Cluster: lc, Info: info}, nil
}

// directories returns the ACME directory URL of every node.
func (a *anchorCluster) directories() []string {
	var dirs []string
	for _, n := range a.Info.Nodes {
		dirs = append(dirs, n.ACMEDirectory)
	}
	return dirs
}

// createEABKeys creates n EAB keys for the bootstrap chain through the admin
// API, each pre-authorizing *.bench.test, so that n accounts can exist.
func (a *anchorCluster) createEABKeys(ctx context.Context, n int) ([]*acmeload.EAB, error) {
	creds, err := cluster.LoadCredentials(a.Info.AdminTLS)
	if err != nil {
		return nil, fmt.Errorf("load admin certificate: %w", err)
	}
	conn, err := grpc.NewClient(a.Info.Nodes[0].AdminAddr,
		grpc.WithTransportCredentials(credentials.NewTLS(creds.ClientConfig())))
	if err != nil {
		return nil, fmt.Errorf("dial admin API: %w", err)
	}
	defer conn.Close()
	client := anchorv1.NewEABKeysClient(conn)
	keys := make([]*acmeload.EAB, 0, n)
	for range n {
		secret, err := client.CreateEABKey(ctx, &anchorv1.CreateEABKeyRequest{
			Org: localcluster.DefaultOrg, Realm: localcluster.DefaultRealm,
			Chain: localcluster.DefaultChain, Identifiers: []string{"*." + benchDomain},
		})
		if err != nil {
			return nil, fmt.Errorf("create EAB key: %w", err)
		}
		keys = append(keys, &acmeload.EAB{KeyID: secret.Key.KeyId, HMACKey: secret.HmacKey})
	}
	return keys, nil
}

// leader returns the index of the node that node 0 names as the leader, or
// an error while there is none.
func (a *anchorCluster) leader(ctx context.Context, from int) (int, error) {
	st, err := localcluster.Status(ctx, a.Layout.Nodes[from].GRPCAddr, a.Layout.AdminTLS)
	if err != nil {
		return -1, err
	}
	for i, n := range a.Layout.Nodes {
		if n.ID == st.LeaderId {
			return i, nil
		}
	}
	return -1, fmt.Errorf("node %s knows no leader", a.Layout.Nodes[from].ID)
}

// stopAll stops the nodes and logs a failure to stop.
func (a *anchorCluster) stopAll(c *common) {
	if err := a.Stop(); err != nil {
		c.logger.Warn("stop anchor cluster", "error", err)
	}
}

// httpsClient returns an HTTP client that trusts the PEM certificates in
// caFile, with enough idle connections for conns concurrent clients.
func httpsClient(caFile string, conns int) (*http.Client, error) {
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool},
			MaxIdleConns:        4 * conns,
			MaxIdleConnsPerHost: 2 * conns,
			IdleConnTimeout:     time.Minute,
		},
	}, nil
}

// workDir returns a new directory under the work directory.
func workDir(c *common, name string) (string, error) {
	dir := filepath.Join(c.work, name)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o700)
}
