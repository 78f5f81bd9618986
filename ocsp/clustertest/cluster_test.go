package clustertest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"anchor/ca"
	"anchor/fsm"
	"anchor/internal/testenv"
	"anchor/ocsp"
)

// clusterNode is a testenv member with a Responder on a loopback server.
type clusterNode struct {
	member *testenv.Member
	// signatures counts the signatures of the member's Responder.
	signatures *countingSigners
	server     *httptest.Server
}

// countingSigners counts the signatures made with an HSM's keys.
type countingSigners struct {
	signers ocsp.Signers
	count   atomic.Int64
}

func (c *countingSigners) Signer(keyID string) (crypto.Signer, error) {
	s, err := c.signers.Signer(keyID)
	if err != nil {
		return nil, err
	}
	return countingSigner{Signer: s, count: &c.count}, nil
}

type countingSigner struct {
	crypto.Signer
	count *atomic.Int64
}

func (s countingSigner) Sign(
	rand io.Reader,
	digest []byte,
	opts crypto.SignerOpts,
) ([]byte, error) {
	s.count.Add(1)
	return s.Signer.Sign(rand, digest, opts)
}

// testCluster is an in-process cluster of three members, each responding to
// OCSP requests from its own state and HSM.
type testCluster struct {
	t     *testing.T
	env   *testenv.Env
	nodes []*clusterNode
	dir   string
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	env := testenv.New(t, 3, testenv.Options{})
	c := &testCluster{t: t, env: env, dir: t.TempDir()}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, m := range env.Members {
		counter := &countingSigners{signers: m.HSM}
		r := ocsp.NewResponder(m.State(), counter, logger, ocsp.Options{})
		srv := httptest.NewServer(r.Wrap(http.NotFoundHandler()))
		t.Cleanup(srv.Close)
		c.nodes = append(c.nodes, &clusterNode{member: m, signatures: counter, server: srv})
	}
	return c
}

// runDesignators starts a Designator on every member; the leader's acts.
func (c *testCluster) runDesignators() {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, n := range c.nodes {
		m := n.member
		d := ocsp.NewDesignator(m.State(), m.Cluster, m.HSM, logger, ocsp.DesignatorOptions{
			IsLeader: m.Cluster.IsLeader, NodeID: m.Cluster.ID(),
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.Run(ctx)
		}()
		c.t.Cleanup(func() {
			cancel()
			<-done
		})
	}
}

// issue has member 0 issue a leaf for name from the chain's default SubCA.
func (c *testCluster) issue(name string) *x509.Certificate {
	c.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		c.t.Fatal(err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
	}, key)
	if err != nil {
		c.t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		c.t.Fatal(err)
	}
	issued, err := c.env.Members[0].Issuer.Issue(context.Background(),
		&ca.Request{ChainID: c.env.ChainID, CSR: csr})
	if err != nil {
		c.t.Fatalf("issue %s: %v", name, err)
	}
	cert, err := x509.ParseCertificate(issued.Credential.DER)
	if err != nil {
		c.t.Fatal(err)
	}
	return cert
}

// revoke commits a revocation through member 0 and returns once member 0
// has applied it.
func (c *testCluster) revoke(cert *x509.Certificate, reason int) {
	c.t.Helper()
	c.revokeThrough(c.nodes[0], cert, reason)
}

// revokeThrough commits a revocation through node n and returns once n has
// applied it.
func (c *testCluster) revokeThrough(n *clusterNode, cert *x509.Certificate, reason int) {
	c.t.Helper()
	cmd := fsm.MustCommand(fsm.CmdRevoke, fsm.Revoke{
		Serial: fsm.SerialKey(cert.SerialNumber), Reason: reason,
	})
	res, err := n.member.Apply(context.Background(), cmd)
	if err == nil {
		err = res.Decode(nil)
	}
	if err != nil {
		c.t.Fatalf("revoke %s: %v", fsm.SerialKey(cert.SerialNumber), err)
	}
}

// leader returns the node that leads the cluster and the others.
func (c *testCluster) leader() (*clusterNode, []*clusterNode) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for i, n := range c.nodes {
			if n.member.Cluster.IsLeader() {
				others := slices.Concat(c.nodes[:i], c.nodes[i+1:])
				return n, others
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatal("no member leads the cluster after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get sends a node a GET for cert's SHA-1 CertID and returns the raw and
// parsed response.
func (c *testCluster) get(n *clusterNode, cert *x509.Certificate) ([]byte, *xocsp.Response) {
	c.t.Helper()
	der, err := xocsp.CreateRequest(cert, c.env.SubCA, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.Get(n.server.URL + "/ocsp/" + base64.StdEncoding.EncodeToString(der))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	parsed, err := xocsp.ParseResponseForCert(body, cert, c.env.SubCA)
	if err != nil {
		c.t.Fatalf("parse response of %s: %v", n.member.Cluster.ID(), err)
	}
	return body, parsed
}

// waitStatus polls a node until it responds with status for cert, failing
// after timeout. It returns the time of the first matching response.
func (c *testCluster) waitStatus(n *clusterNode, cert *x509.Certificate, status int,
	timeout time.Duration) time.Time {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, resp := c.get(n, cert)
		if resp.Status == status {
			return time.Now()
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: status %d after %s, want %d", n.member.Cluster.ID(), resp.Status,
				timeout, status)
		}
		select {
		case <-n.member.State().Watch():
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// waitApplied waits until a node's state holds cert's credential, without
// asking its responder.
func (c *testCluster) waitApplied(n *clusterNode, cert *x509.Certificate) {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := n.member.State().View(func(tx *fsm.Tx) error {
			_, err := tx.Credential(fsm.SerialKey(cert.SerialNumber))
			return err
		})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %v after 5s", n.member.Cluster.ID(), err)
		}
		select {
		case <-n.member.State().Watch():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// requireOutput fails the test unless out contains every want.
func requireOutput(t *testing.T, out string, err error, wants ...string) {
	t.Helper()
	if err != nil {
		t.Errorf("openssl failed: %v\n%s", err, out)
	}
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("openssl output lacks %q:\n%s", want, out)
		}
	}
}

func (c *testCluster) writePEM(name, blockType string, der []byte) string {
	c.t.Helper()
	path := filepath.Join(c.dir, name)
	data := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// revocationSamples is the number of revocations whose propagation
// TestCluster_RevocationReachesEveryNode measures.
const revocationSamples = 50

// TestCluster_RevocationReachesEveryNode revokes through the leader and
// polls the followers' responders over HTTP until they return revoked. The
// clock starts when Apply returns on the leader, once the entry is
// committed. Through a follower, Apply returns only after that follower has
// applied the entry, which would hide the followers' delay. The test
// asserts a generous bound and logs the measured latencies, which
// docs/benchmarks.md records.
func TestCluster_RevocationReachesEveryNode(t *testing.T) {
	c := newTestCluster(t)
	var leaves []*x509.Certificate
	for i := range revocationSamples {
		leaves = append(leaves, c.issue(fmt.Sprintf("leaf%d.example.net", i)))
	}
	leader, followers := c.leader()
	for _, leaf := range leaves {
		for _, n := range followers {
			c.waitStatus(n, leaf, xocsp.Good, 5*time.Second)
		}
	}

	var latencies []time.Duration
	for _, leaf := range leaves {
		c.revokeThrough(leader, leaf, 1)
		committed := time.Now()
		for _, n := range followers {
			at := c.waitStatus(n, leaf, xocsp.Revoked, 5*time.Second)
			latencies = append(latencies, at.Sub(committed))
		}
	}
	if now, _ := c.leader(); now != leader {
		t.Logf("leadership moved during the measurement; samples after the change start late")
	}
	slices.Sort(latencies)
	pct := func(p int) time.Duration { return latencies[(len(latencies)-1)*p/100] }
	t.Logf("revocation committed on the leader to revoked OCSP response on the followers: "+
		"%d samples, p50 %s, p90 %s, p99 %s, max %s", len(latencies), pct(50), pct(90), pct(99),
		latencies[len(latencies)-1])
}

func TestCluster_IsolatedNodeKeepsAnswering(t *testing.T) {
	c := newTestCluster(t)
	cached := c.issue("cached.example.net")
	fresh := c.issue("fresh.example.net")
	last := c.nodes[2]
	c.waitStatus(last, cached, xocsp.Good, 5*time.Second)
	c.waitApplied(last, fresh)
	before, _ := c.get(last, cached)

	c.env.Members[0].Stop()
	c.env.Members[1].Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cmd := fsm.MustCommand(fsm.CmdRevoke, fsm.Revoke{Serial: fsm.SerialKey(fresh.SerialNumber)})
	if _, err := last.member.Apply(ctx, cmd); err == nil {
		t.Fatal("the remaining member committed a command without quorum")
	}

	signed := last.signatures.count.Load()
	after, _ := c.get(last, cached)
	if !bytes.Equal(before, after) || last.signatures.count.Load() != signed {
		t.Error("after the node lost quorum the response changed or was signed again, " +
			"so it did not come from the cache")
	}
	body, resp := c.get(last, fresh)
	if got := last.signatures.count.Load() - signed; got != 1 {
		t.Errorf("the first request for the second leaf made %d signatures, want 1", got)
	}
	if resp.Status != xocsp.Good {
		t.Errorf("freshly signed status %d, want good", resp.Status)
	}
	if time.Since(resp.ProducedAt) > time.Minute {
		t.Errorf("producedAt %s is not fresh", resp.ProducedAt)
	}
	leafPEM := c.writePEM("fresh.pem", "CERTIFICATE", fresh.Raw)
	subPEM := c.writePEM("sub.pem", "CERTIFICATE", c.env.SubCA.Raw)
	rootPEM := c.writePEM("root.pem", "CERTIFICATE", c.env.Root.Raw)
	respPath := filepath.Join(c.dir, "fresh.der")
	if err := os.WriteFile(respPath, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "ocsp", "-respin", respPath, "-issuer", subPEM,
		"-cert", leafPEM, "-CAfile", rootPEM, "-no_nonce").CombinedOutput()
	requireOutput(t, string(out), err, "Response verify OK", leafPEM+": good")
	out, err = exec.Command("openssl", "ocsp", "-issuer", subPEM, "-cert", leafPEM,
		"-url", last.server.URL+"/ocsp", "-CAfile", rootPEM, "-nonce").CombinedOutput()
	requireOutput(t, string(out), err, "Response verify OK", leafPEM+": good")
}

// TestCluster_OpenSSLOnEveryNode checks good, revoked with reason and
// unknown with openssl on every member once the designated responder key
// has reached every HSM, with the root as the only trust anchor.
func TestCluster_OpenSSLOnEveryNode(t *testing.T) {
	c := newTestCluster(t)
	c.runDesignators()
	subID := c.waitResponder()
	c.env.WaitKeysEverywhere(t)
	var designated []fsm.OCSPResponder
	c.env.Members[0].State().View(func(tx *fsm.Tx) error {
		var err error
		designated, err = tx.OCSPResponders(subID)
		return err
	})

	good := c.issue("good.example.net")
	revoked := c.issue("revoked.example.net")
	c.revoke(revoked, 1)
	rootPEM := c.writePEM("root.pem", "CERTIFICATE", c.env.Root.Raw)
	subPEM := c.writePEM("sub.pem", "CERTIFICATE", c.env.SubCA.Raw)
	goodPEM := c.writePEM("good.pem", "CERTIFICATE", good.Raw)
	revokedPEM := c.writePEM("revoked.pem", "CERTIFICATE", revoked.Raw)
	unknown := "0x" + new(big.Int).Add(good.SerialNumber, big.NewInt(1)).Text(16)

	for _, n := range c.nodes {
		c.waitStatus(n, revoked, xocsp.Revoked, 5*time.Second)
		url := n.server.URL + "/ocsp"
		ocsp := func(args ...string) (string, error) {
			base := []string{"ocsp", "-issuer", subPEM, "-url", url, "-CAfile", rootPEM}
			out, err := exec.Command("openssl", append(base, args...)...).CombinedOutput()
			return string(out), err
		}
		out, err := ocsp("-cert", goodPEM)
		requireOutput(t, out, err, "Response verify OK", goodPEM+": good")
		out, err = ocsp("-cert", revokedPEM)
		requireOutput(t, out, err, "Response verify OK", revokedPEM+": revoked",
			"Reason: keyCompromise")
		out, err = ocsp("-serial", unknown)
		requireOutput(t, out, err, "Response verify OK", unknown+": unknown")

		_, resp := c.get(n, good)
		if resp.Certificate == nil || !bytes.Equal(resp.Certificate.Raw, designated[0].CertDER) {
			t.Errorf("%s: response not signed by the designated responder", n.member.Cluster.ID())
		}
	}
}

// waitResponder waits until every member has applied a responder
// certificate of the default SubCA and returns the SubCA's ID.
func (c *testCluster) waitResponder() string {
	c.t.Helper()
	var subID string
	c.env.Members[0].State().View(func(tx *fsm.Tx) error {
		chain, err := tx.Chain(c.env.ChainID)
		if err == nil {
			subID = chain.DefaultSubCAID
		}
		return err
	})
	deadline := time.Now().Add(30 * time.Second)
	for _, m := range c.env.Members {
		for {
			var n int
			m.State().View(func(tx *fsm.Tx) error {
				rs, err := tx.OCSPResponders(subID)
				n = len(rs)
				return err
			})
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s has no responder certificate of %s after 30s", m.Cluster.ID(), subID)
			}
			select {
			case <-m.State().Watch():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return subID
}
