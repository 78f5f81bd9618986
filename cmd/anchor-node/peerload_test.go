package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	anchorv1 "anchor/api/anchorv1"
	"anchor/cluster"
	"anchor/fsm"
	"anchor/internal/localcluster"
)

// Names of the chain that holds the bulk-loaded credentials.
const (
	bulkOrg   = "bulk"
	bulkRealm = "r"
	bulkChain = "c"
)

// bulkSigner signs leaf certificates under a throwaway CA key that is in no
// HSM. The leaves only fill the state, each with its own serial and name.
type bulkSigner struct {
	caKey   *ecdsa.PrivateKey
	caTmpl  *x509.Certificate
	caDER   []byte
	leafKey *ecdsa.PrivateKey
	// issued is the leaves' notBefore, two days ago. They expire a day
	// later, before the test runs, because every node pre-signs OCSP
	// responses for unexpired credentials and would try, fail and log a
	// warning for each of these.
	issued time.Time
}

func bulkName(i int) string { return fmt.Sprintf("bulk-%d.test", i) }

func newBulkSigner(t *testing.T) *bulkSigner {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	issued := time.Now().Add(-48 * time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1 << 40), Subject: pkix.Name{CommonName: "bulk load CA"},
		NotBefore: issued, NotAfter: issued.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &bulkSigner{caKey: caKey, caTmpl: caTmpl, caDER: caDER, leafKey: leafKey, issued: issued}
}

// leaf signs leaf i, with serial i+1 and name bulkName(i). A name per leaf
// makes each credential its own certificate, as separate ACME orders would.
func (b *bulkSigner) leaf(i int) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(i + 1)),
		Subject:      pkix.Name{CommonName: bulkName(i)}, DNSNames: []string{bulkName(i)},
		NotBefore: b.issued, NotAfter: b.issued.Add(24 * time.Hour),
	}
	return x509.CreateCertificate(rand.Reader, tmpl, b.caTmpl, b.leafKey.Public(), b.caKey)
}

// peerLoader commits commands the way a follower forwards them: over the
// internal Apply RPC of the leader, with a node certificate of the cluster's
// internal CA.
type peerLoader struct {
	layout *localcluster.Layout
	creds  *cluster.Credentials

	mu     sync.Mutex
	leader string                        // gRPC address, empty until found
	conns  map[string][]*grpc.ClientConn // by gRPC address
}

// connsPerNode spreads the loader's concurrent calls over several HTTP/2
// connections to one node.
const connsPerNode = 4

// newPeerLoader issues a node certificate named bulk-loader from the
// internal CA in the layout's data directory.
func newPeerLoader(t *testing.T, l *localcluster.Layout) *peerLoader {
	t.Helper()
	caDir := filepath.Join(l.DataDir, "internal-ca")
	internal, err := cluster.LoadInternalCA(caDir)
	if err != nil {
		t.Fatalf("load internal CA: %v", err)
	}
	tlsCfg, err := internal.IssueNode(caDir, filepath.Join(t.TempDir(), "loader-tls"),
		"bulk-loader", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cluster.LoadCredentials(tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &peerLoader{layout: l, creds: creds, conns: map[string][]*grpc.ClientConn{}}
	t.Cleanup(func() {
		for _, cs := range p.conns {
			for _, c := range cs {
				c.Close()
			}
		}
	})
	return p
}

// load creates the bulk organization, realm and chain, then signs n leaves
// and commits one credential per leaf from many goroutines at once.
func (p *peerLoader) load(ctx context.Context, signer *bulkSigner, n int) error {
	setup := []*fsm.Command{
		fsm.MustCommand(fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: bulkOrg}),
		fsm.MustCommand(fsm.CmdCreateRealm, fsm.CreateRealm{Org: bulkOrg, Name: bulkRealm}),
		fsm.MustCommand(fsm.CmdCreateChain, fsm.CreateChain{
			Org: bulkOrg, Realm: bulkRealm, Name: bulkChain,
			Root:  fsm.CA{Name: "root", CertDER: signer.caDER},
			SubCA: fsm.CA{Name: "sub", CertDER: signer.caDER},
		}),
	}
	for _, cmd := range setup {
		if err := p.applyRetried(ctx, 0, cmd); err != nil {
			return fmt.Errorf("apply %s: %w", cmd.Type, err)
		}
	}

	chainID := fsm.ChainID(bulkOrg, bulkRealm, bulkChain)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := range loadWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n && failed.Load() == nil; i = int(next.Add(1)) - 1 {
				err := p.issue(ctx, w, signer, chainID, i)
				if err != nil {
					err = fmt.Errorf("credential %d: %w", i, err)
					failed.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

// loadWorkers is the number of credentials that the loader signs and
// commits at once.
const loadWorkers = 128

func (p *peerLoader) issue(ctx context.Context, worker int, signer *bulkSigner, chainID string,
	i int) error {
	der, err := signer.leaf(i)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	return p.applyRetried(ctx, worker, fsm.MustCommand(fsm.CmdIssueCredential, fsm.IssueCredential{
		ChainID: chainID, CAID: chainID + "/sub", Names: []string{bulkName(i)}, DER: der,
	}))
}

// applyRetried commits cmd on the leader, finding the leader again after a
// failure that a leadership change causes. A command that a failed attempt
// did commit fails with AlreadyExists on the retry. That counts as applied,
// because every bulk command creates something with a fixed name or serial.
func (p *peerLoader) applyRetried(ctx context.Context, worker int, cmd *fsm.Command) error {
	data, err := cmd.Encode()
	if err != nil {
		return err
	}
	backoff := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		res, err := p.applyOnce(ctx, worker, data)
		if err == nil {
			err = res.Decode(nil)
			if attempt > 1 && fsm.CodeOf(err) == fsm.CodeAlreadyExists {
				return nil
			}
			return err
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.FailedPrecondition, codes.DeadlineExceeded:
		default:
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// applyOnce sends one Apply to the last leader found, and clears that
// leader when the call fails.
func (p *peerLoader) applyOnce(ctx context.Context, worker int, data []byte) (*fsm.Result, error) {
	addr, err := p.leaderAddr(ctx)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	conn, err := p.conn(addr, worker%connsPerNode)
	if err != nil {
		return nil, err
	}
	callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := anchorv1.NewInternalClient(conn).Apply(callCtx,
		&anchorv1.ApplyRequest{Command: data})
	if err != nil {
		p.forgetLeader(addr)
		return nil, err
	}
	var res fsm.Result
	if err := json.Unmarshal(resp.Result, &res); err != nil {
		return nil, fmt.Errorf("decode result from %s: %w", addr, err)
	}
	return &res, nil
}

// leaderAddr returns the leader's gRPC address, asking the nodes' cluster
// status in turn when no leader is known.
func (p *peerLoader) leaderAddr(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leader != "" {
		return p.leader, nil
	}
	var last error
	for _, n := range p.layout.Nodes {
		st, err := localcluster.Status(ctx, n.GRPCAddr, p.layout.AdminTLS)
		if err != nil {
			last = err
			continue
		}
		for _, m := range p.layout.Nodes {
			if m.ID == st.LeaderId && st.LeaderId != "" {
				p.leader = m.GRPCAddr
				return p.leader, nil
			}
		}
		last = fmt.Errorf("node %s reports leader %q", n.ID, st.LeaderId)
	}
	return "", fmt.Errorf("no leader found: %w", last)
}

func (p *peerLoader) forgetLeader(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leader == addr {
		p.leader = ""
	}
}

func (p *peerLoader) conn(addr string, k int) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := p.conns[addr]
	for len(cs) < connsPerNode {
		c, err := grpc.NewClient(addr,
			grpc.WithTransportCredentials(credentials.NewTLS(p.creds.ClientConfig())))
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		cs = append(cs, c)
	}
	p.conns[addr] = cs
	return cs[k], nil
}
