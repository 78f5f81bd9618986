//go:build e2e

package drills

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	anchorv1 "anchor/api/anchorv1"
	"anchor/cluster"
)

// Paths inside the containers, as deploy/docker/entrypoint.sh lays them out.
const (
	adminDirInImage = "/var/lib/anchor-admin"
	eabFileInImage  = "/var/lib/anchor/data/bootstrap-eab.json"
	acmeDirPath     = "/default/default/x509/default/acme/directory"
	rootCertPath    = "/ca/default/default/default/root.der"
)

// node is one node of a drill cluster and its published endpoints.
type node struct {
	id        string // also its compose service name
	httpURL   string // OCSP, CRLs, CA certificates
	acmeDir   string // ACME directory URL (HTTPS)
	adminAddr string // admin gRPC
}

// drillCluster is a running compose project with what clients need to
// reach it: the admin certificate, the CA of the ACME HTTPS listeners, the
// bootstrap EAB key and the chain's root certificate.
type drillCluster struct {
	project *composeProject
	nodes   []node
	dir     string
	admin   cluster.TLSConfig
	acmeCAs *x509.CertPool
	eab     eabKey
	root    *x509.Certificate

	mu      sync.Mutex
	conns   map[string]*grpc.ClientConn
	account *acmeAccount
}

type eabKey struct {
	KeyID   string `json:"key_id"`
	HMACKey string `json:"hmac_key"`
}

// startCluster brings the project up and waits until every node holds
// every CA key, the bootstrap EAB key exists and every node's /readyz
// returns 200.
func startCluster(ctx context.Context, p *composeProject, dir string) (*drillCluster, error) {
	c := &drillCluster{project: p, dir: dir, conns: map[string]*grpc.ClientConn{}}
	for i := 1; i <= p.nodes; i++ {
		c.nodes = append(c.nodes, node{
			id:        fmt.Sprintf("node%d", i),
			httpURL:   fmt.Sprintf("http://127.0.0.1:%s%d", httpPortPrefix, i),
			acmeDir:   fmt.Sprintf("https://127.0.0.1:%s%d%s", acmePortPrefix, i, acmeDirPath),
			adminAddr: fmt.Sprintf("127.0.0.1:%s%d", adminPortPrefix, i),
		})
	}
	start := time.Now()
	if err := p.up(ctx); err != nil {
		return nil, err
	}
	if err := c.copyAdminCredentials(ctx); err != nil {
		return nil, err
	}
	err := poll(ctx, 250*time.Millisecond, func() error {
		if err := c.readEAB(ctx); err != nil {
			return err
		}
		if err := c.keysEverywhere(ctx); err != nil {
			return err
		}
		for _, n := range c.nodes {
			if _, err := httpGet(ctx, n.httpURL+"/readyz"); err != nil {
				return fmt.Errorf("%s not ready: %w", n.id, err)
			}
		}
		// The compose health check runs anchor-node -check-ready in each
		// container; it must agree with /readyz.
		for _, n := range c.nodes {
			if err := c.healthy(ctx, n.id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cluster %s not ready: %w", p.name, err)
	}
	if err := c.fetchRoot(ctx); err != nil {
		return nil, err
	}
	logf("cluster %s: %d nodes ready in %s", p.name, p.nodes, ms(time.Since(start)))
	return c, nil
}

// healthy returns nil when Docker reports the container of service as
// healthy.
func (c *drillCluster) healthy(ctx context.Context, service string) error {
	id, err := c.project.containerID(ctx, service)
	if err != nil {
		return err
	}
	out, err := docker(ctx, "inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", id)
	if err != nil {
		return err
	}
	if status := strings.TrimSpace(out); status != "healthy" {
		return fmt.Errorf("%s health status %q, want healthy", service, status)
	}
	return nil
}

// copyAdminCredentials copies the admin certificate out of the init
// container, which has exited but keeps its volumes.
func (c *drillCluster) copyAdminCredentials(ctx context.Context) error {
	id, err := c.project.containerID(ctx, "init")
	if err != nil {
		return err
	}
	dst := filepath.Join(c.dir, "admin")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	if _, err := docker(ctx, "cp", id+":"+adminDirInImage+"/.", dst); err != nil {
		return err
	}
	c.admin = cluster.TLSConfig{
		CAFile:   filepath.Join(dst, "ca.pem"),
		CertFile: filepath.Join(dst, "admin.pem"),
		KeyFile:  filepath.Join(dst, "admin-key.pem"),
	}
	caPEM, err := os.ReadFile(c.admin.CAFile)
	if err != nil {
		return err
	}
	c.acmeCAs = x509.NewCertPool()
	if !c.acmeCAs.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%s contains no PEM certificate", c.admin.CAFile)
	}
	return nil
}

func (c *drillCluster) readEAB(ctx context.Context) error {
	out, err := c.project.compose(ctx, "exec", "-T", "node1", "cat", eabFileInImage)
	if err != nil {
		return fmt.Errorf("bootstrap EAB key not written yet: %w", err)
	}
	if err := json.Unmarshal([]byte(out), &c.eab); err != nil || c.eab.KeyID == "" {
		return fmt.Errorf("bootstrap EAB file %q: %v", out, err)
	}
	return nil
}

// keysEverywhere checks, through node 1, that every node is a member and
// holds the same non-empty set of CA keys.
func (c *drillCluster) keysEverywhere(ctx context.Context) error {
	st, err := c.status(ctx, 0)
	if err != nil {
		return err
	}
	if len(st.Members) != len(c.nodes) {
		return fmt.Errorf("%d of %d members known", len(st.Members), len(c.nodes))
	}
	want := len(st.Members[0].CaKeys)
	for _, m := range st.Members {
		if len(m.CaKeys) == 0 || len(m.CaKeys) != want {
			return fmt.Errorf("member %s holds %d CA keys", m.Id, len(m.CaKeys))
		}
	}
	return nil
}

func (c *drillCluster) fetchRoot(ctx context.Context) error {
	der, err := httpGet(ctx, c.nodes[0].httpURL+rootCertPath)
	if err != nil {
		return fmt.Errorf("fetch root certificate: %w", err)
	}
	c.root, err = x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parse root certificate: %w", err)
	}
	return os.WriteFile(filepath.Join(c.dir, "root.pem"),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// status requests the cluster status from node i over its published admin port.
func (c *drillCluster) status(ctx context.Context, i int) (*anchorv1.StatusResponse, error) {
	conn, err := c.conn(c.nodes[i].adminAddr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return anchorv1.NewClusterClient(conn).Status(ctx, &anchorv1.StatusRequest{})
}

func (c *drillCluster) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn, ok := c.conns[addr]; ok {
		return conn, nil
	}
	creds, err := cluster.LoadCredentials(c.admin)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(credentials.NewTLS(creds.ClientConfig())))
	if err != nil {
		return nil, err
	}
	c.conns[addr] = conn
	return conn, nil
}

// leader returns the leader that node i reports, or an error when it
// reports none or cannot be reached.
func (c *drillCluster) leader(ctx context.Context, i int) (string, error) {
	st, err := c.status(ctx, i)
	if err != nil {
		return "", err
	}
	if st.LeaderId == "" {
		return "", fmt.Errorf("%s reports no leader", c.nodes[i].id)
	}
	return st.LeaderId, nil
}

// waitLeader polls the nodes in among every 50ms until one of them reports
// a leader that is in among and is not old, and returns it with the time
// since start.
func (c *drillCluster) waitLeader(ctx context.Context, among []int, old string, start time.Time) (
	string, time.Duration, error) {
	allowed := map[string]bool{}
	for _, i := range among {
		allowed[c.nodes[i].id] = true
	}
	var found string
	err := poll(ctx, 50*time.Millisecond, func() error {
		for _, i := range among {
			id, err := c.leader(ctx, i)
			if err == nil && id != old && allowed[id] {
				found = id
				return nil
			}
		}
		return fmt.Errorf("no new leader among %v yet", among)
	})
	return found, time.Since(start), err
}

// index returns the position of the node with the given ID.
func (c *drillCluster) index(id string) int {
	for i, n := range c.nodes {
		if n.id == id {
			return i
		}
	}
	panic("unknown node " + id)
}

// waitApplied waits until every node in among reports an applied index of
// at least idx.
func (c *drillCluster) waitApplied(ctx context.Context, among []int, idx uint64) error {
	return poll(ctx, 100*time.Millisecond, func() error {
		for _, i := range among {
			st, err := c.status(ctx, i)
			if err != nil {
				return err
			}
			if st.AppliedIndex < idx {
				return fmt.Errorf("%s applied %d of %d", c.nodes[i].id, st.AppliedIndex, idx)
			}
		}
		return nil
	})
}

func (c *drillCluster) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = map[string]*grpc.ClientConn{}
}

// poll calls cond every interval until it returns nil or ctx ends, and then
// returns cond's last error.
func poll(ctx context.Context, interval time.Duration, cond func() error) error {
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func httpGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}
