package localcluster

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	anchorv1 "anchor/api/anchorv1"
	"anchor/cluster"
	"anchor/node"
)

// Info is the connection file written to DATA_DIR/cluster.json.
type Info struct {
	ChainID string `json:"chain_id"`
	// AdminTLS is the client certificate that anchorctl presents.
	AdminTLS     cluster.TLSConfig `json:"admin_tls"`
	RootCertPath string            `json:"root_cert"`
	// ACMECACert is the CA certificate that ACME clients trust for the
	// nodes' HTTPS listeners (the cluster-internal CA).
	ACMECACert string     `json:"acme_ca_cert"`
	EAB        EABInfo    `json:"eab"`
	Nodes      []NodeInfo `json:"nodes"`
}

// EABInfo is the bootstrap External Account Binding key.
type EABInfo struct {
	KeyID   string `json:"key_id"`
	HMACKey string `json:"hmac_key"`
}

// NodeInfo is how to reach one node.
type NodeInfo struct {
	ID            string `json:"id"`
	ACMEDirectory string `json:"acme_directory"`
	OCSPURL       string `json:"ocsp_url"`
	CRLBaseURL    string `json:"crl_base_url"`
	AdminAddr     string `json:"admin_addr"`
	Log           string `json:"log"`
}

// WaitReady waits until every node holds every CA key of the cluster, the
// bootstrap EAB key exists and every node's /readyz returns 200, then writes
// root.pem and cluster.json. Before /readyz does, a node answers ACME and CRL
// requests with 503.
func (c *Cluster) WaitReady(ctx context.Context) (*Info, error) {
	err := WaitFor(ctx, func() error {
		for i := range c.Layout.Nodes {
			if !c.Running(i) {
				return fmt.Errorf("node %s exited; %s", c.Layout.Nodes[i].ID, c.LogTail(i, 2000))
			}
		}
		if _, err := os.Stat(c.Layout.EABFile); err != nil {
			return fmt.Errorf("bootstrap EAB key not written yet")
		}
		if err := c.keysEverywhere(ctx); err != nil {
			return err
		}
		for i := range c.Layout.Nodes {
			if err := c.NodeReady(ctx, i); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c.writeInfo(ctx)
}

// NodeReady returns nil when node i's /readyz returns 200: the node has
// applied the cluster's commit index since it started. A restarted node's
// own status is no proof of that, because its commit index is only what it
// has heard of so far.
func (c *Cluster) NodeReady(ctx context.Context, i int) error {
	n := c.Layout.Nodes[i]
	if _, err := fetch(ctx, "http://"+n.HTTPAddr+"/readyz"); err != nil {
		return fmt.Errorf("%s not ready: %w", n.ID, err)
	}
	return nil
}

// keysEverywhere checks, through node 1's status, that every member holds
// the same, non-empty set of CA keys.
func (c *Cluster) keysEverywhere(ctx context.Context) error {
	st, err := Status(ctx, c.Layout.Nodes[0].GRPCAddr, c.Layout.AdminTLS)
	if err != nil {
		return err
	}
	if len(st.Members) != len(c.Layout.Nodes) {
		return fmt.Errorf("%d of %d members known", len(st.Members), len(c.Layout.Nodes))
	}
	want := -1
	for _, m := range st.Members {
		if want == -1 {
			want = len(m.CaKeys)
		}
		if len(m.CaKeys) == 0 || len(m.CaKeys) != want {
			return fmt.Errorf("member %s holds %d CA keys", m.Id, len(m.CaKeys))
		}
	}
	return nil
}

// Status asks the node at grpcAddr for the cluster status, authenticating
// with the admin certificate.
func Status(ctx context.Context, grpcAddr string, admin cluster.TLSConfig) (*anchorv1.StatusResponse, error) {
	creds, err := cluster.LoadCredentials(admin)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(creds.ClientConfig())))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return anchorv1.NewClusterClient(conn).Status(ctx, &anchorv1.StatusRequest{})
}

func (c *Cluster) writeInfo(ctx context.Context) (*Info, error) {
	l := c.Layout
	data, err := os.ReadFile(l.EABFile)
	if err != nil {
		return nil, err
	}
	var eab node.EABFile
	if err := json.Unmarshal(data, &eab); err != nil {
		return nil, fmt.Errorf("read %s: %w", l.EABFile, err)
	}
	info := &Info{
		ChainID:      l.ChainID,
		AdminTLS:     l.AdminTLS,
		ACMECACert:   l.InternalCACert,
		RootCertPath: filepath.Join(l.DataDir, "root.pem"),
		EAB:          EABInfo{KeyID: eab.KeyID, HMACKey: eab.HMACKey},
	}
	rootDER, err := fetch(ctx, "http://"+l.Nodes[0].HTTPAddr+"/ca/"+l.ChainID+"/root.der")
	if err != nil {
		return nil, fmt.Errorf("fetch root certificate: %w", err)
	}
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})
	if err := os.WriteFile(info.RootCertPath, rootPEM, 0o644); err != nil {
		return nil, err
	}
	for _, n := range l.Nodes {
		base := "http://" + n.HTTPAddr
		info.Nodes = append(info.Nodes, NodeInfo{
			ID:            n.ID,
			ACMEDirectory: "https://" + n.ACMEAddr + ACMEDirectoryPath(DefaultOrg, DefaultRealm, DefaultChain),
			OCSPURL:       base + "/ocsp",
			CRLBaseURL:    base + "/crl/",
			AdminAddr:     n.GRPCAddr,
			Log:           n.LogPath,
		})
	}
	return info, writeJSON(filepath.Join(l.DataDir, "cluster.json"), info, 0o600)
}

func fetch(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// ACMEDirectoryPath returns the URL path of a chain's ACME directory.
func ACMEDirectoryPath(org, realm, chain string) string {
	return "/" + org + "/" + realm + "/x509/" + chain + "/acme/directory"
}
