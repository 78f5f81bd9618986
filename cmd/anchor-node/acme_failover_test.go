package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"anchor/fsm"
	"anchor/internal/localcluster"
)

// startClusterWith runs the anchor-node processes laid out by opts, with
// DataDir from t.TempDir, and waits until every node holds the chain's keys.
func startClusterWith(t *testing.T, opts localcluster.Options) (
	*localcluster.Cluster, *localcluster.Info) {
	t.Helper()
	opts.DataDir = t.TempDir()
	layout, err := localcluster.Prepare(opts)
	if err != nil {
		t.Fatalf("prepare cluster: %v", err)
	}
	c, err := localcluster.Start(layout, nodeBinary)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
		if t.Failed() {
			for i := range layout.Nodes {
				t.Log(c.LogTail(i, 4000))
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	info, err := c.WaitReady(ctx)
	if err != nil {
		t.Fatalf("cluster not ready: %v", err)
	}
	return c, info
}

// heldHTTP01 serves http-01 requests with the key authorizations set by the
// test, but holds each request until release is closed. hits receives
// one value per request, without blocking.
type heldHTTP01 struct {
	mu       sync.Mutex
	keyAuths map[string]string // token -> key authorization
	hits     chan struct{}
	release  chan struct{}
}

func serveHeldHTTP01(t *testing.T, lis net.Listener) *heldHTTP01 {
	t.Helper()
	h := &heldHTTP01{keyAuths: map[string]string{}, hits: make(chan struct{}, 16),
		release: make(chan struct{})}
	srv := &http.Server{Handler: http.HandlerFunc(h.serve)}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return h
}

func (h *heldHTTP01) set(token, keyAuth string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keyAuths[token] = keyAuth
}

func (h *heldHTTP01) serve(w http.ResponseWriter, r *http.Request) {
	select {
	case h.hits <- struct{}{}:
	default:
	}
	select {
	case <-h.release:
	case <-r.Context().Done():
		return
	}
	token := strings.TrimPrefix(r.URL.Path, "/.well-known/acme-challenge/")
	h.mu.Lock()
	keyAuth, ok := h.keyAuths[token]
	h.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write([]byte(keyAuth))
}

// newACMEClient returns a golang.org/x/crypto/acme client of the directory
// that trusts the cluster-internal CA in caFile.
func newACMEClient(t *testing.T, directory, caFile string, key crypto.Signer) *acme.Client {
	t.Helper()
	return &acme.Client{Key: key, DirectoryURL: directory, HTTPClient: httpsClient(t, caFile)}
}

func challengeOfType(t *testing.T, a *acme.Authorization, typ string) *acme.Challenge {
	t.Helper()
	for _, ch := range a.Challenges {
		if ch.Type == typ {
			return ch
		}
	}
	t.Fatalf("authorization %s has no %s challenge", a.URI, typ)
	return nil
}

// TestFailover_OrderFinishedOnAnotherNode starts an order on node 2, kills
// node 2 while it validates the challenge, and finishes the order on node 3
// with the same account key, as a client that switches nodes does. The
// client is golang.org/x/crypto/acme, independent of the server's code.
func TestFailover_OrderFinishedOnAnotherNode(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	responder := serveHeldHTTP01(t, lis)
	cluster, info := startClusterWith(t, localcluster.Options{
		Nodes: 3, HTTP01Port: lis.Addr().(*net.TCPAddr).Port,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	accountKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hmacKey, err := base64.RawURLEncoding.DecodeString(info.EAB.HMACKey)
	if err != nil {
		t.Fatalf("EAB HMAC key is not base64url: %v", err)
	}

	// 1. Account and order on node 2; node 2 starts validating, and the
	// responder holds its request.
	node2 := newACMEClient(t, info.Nodes[1].ACMEDirectory, info.ACMECACert, accountKey)
	_, err = node2.Register(ctx, &acme.Account{ExternalAccountBinding: &acme.ExternalAccountBinding{
		KID: info.EAB.KeyID, Key: hmacKey,
	}}, acme.AcceptTOS)
	if err != nil {
		t.Fatalf("register with EAB on node 2: %v", err)
	}
	order, err := node2.AuthorizeOrder(ctx, acme.DomainIDs("localhost"))
	if err != nil {
		t.Fatalf("new order on node 2: %v", err)
	}
	authz, err := node2.GetAuthorization(ctx, order.AuthzURLs[0])
	if err != nil {
		t.Fatalf("authorization on node 2: %v", err)
	}
	chal := challengeOfType(t, authz, "http-01")
	keyAuth, err := node2.HTTP01ChallengeResponse(chal.Token)
	if err != nil {
		t.Fatal(err)
	}
	responder.set(chal.Token, keyAuth)
	if _, err := node2.Accept(ctx, chal); err != nil {
		t.Fatalf("accept challenge on node 2: %v", err)
	}
	select {
	case <-responder.hits:
	case <-time.After(30 * time.Second):
		t.Fatal("node 2 sent no http-01 request within 30 s")
	}

	// 2. Kill node 2 during its validation.
	if err := cluster.StopNode(1, true); err != nil {
		t.Fatalf("kill node 2: %v", err)
	}
	close(responder.release)

	// 3. The same account key on node 3. The client moves the URLs it holds
	// to node 3, and looks its account URL up again there. Node 3 shows the
	// challenge processing, as node 2 left it, and the client posts it again.
	node3 := newACMEClient(t, info.Nodes[2].ACMEDirectory, info.ACMECACert, accountKey)
	move := func(u string) string {
		return strings.Replace(u, hostOf(t, info.Nodes[1].ACMEDirectory),
			hostOf(t, info.Nodes[2].ACMEDirectory), 1)
	}
	authzURL := move(order.AuthzURLs[0])
	chal3 := awaitChallengeStatus(t, ctx, node3, authzURL, acme.StatusProcessing)
	if _, err := node3.Accept(ctx, chal3); err != nil {
		t.Fatalf("accept challenge again on node 3: %v", err)
	}
	if _, err := node3.WaitAuthorization(ctx, authzURL); err != nil {
		t.Fatalf("authorization on node 3: %v", err)
	}

	// 4. Finalize on node 3.
	order3, err := node3.WaitOrder(ctx, move(order.URI))
	if err != nil {
		t.Fatalf("order on node 3: %v", err)
	}
	csr := localhostCSR(t)
	chain, certURL, err := node3.CreateOrderCert(ctx, order3.FinalizeURL, csr, true)
	if err != nil {
		t.Fatalf("finalize on node 3: %v", err)
	}
	if !strings.HasPrefix(certURL, "https://"+hostOf(t, info.Nodes[2].ACMEDirectory)+"/") {
		t.Errorf("certificate URL %s does not point to node 3", certURL)
	}
	leaf := opensslVerifyChain(t, info.RootCertPath, chain)

	// 5. The certificate is issued once: a second finalize is rejected, and
	// node 3's state holds one credential for the order.
	_, _, err = node3.CreateOrderCert(ctx, order3.FinalizeURL, csr, true)
	var acmeErr *acme.Error
	if !errors.As(err, &acmeErr) || acmeErr.ProblemType != "urn:ietf:params:acme:error:orderNotReady" {
		t.Errorf("second finalize: %v, want orderNotReady", err)
	}
	for _, i := range []int{0, 2} {
		if err := cluster.StopNode(i, false); err != nil {
			t.Fatalf("stop node %d: %v", i+1, err)
		}
	}
	serials := credentialsOfOrder(t, cluster.Layout.Nodes[2].Dir, path.Base(order.URI))
	if len(serials) != 1 || serials[0] != fsm.SerialKey(leaf.SerialNumber) {
		t.Errorf("credentials of the order = %v, want only %s", serials,
			fsm.SerialKey(leaf.SerialNumber))
	}
}

// awaitChallengeStatus polls the authorization's http-01 challenge until it
// has status want, for up to 10 s, and returns it. A follower shows a
// committed change after it applies the commit, usually at the next
// heartbeat.
func awaitChallengeStatus(t *testing.T, ctx context.Context, client *acme.Client,
	authzURL, want string) *acme.Challenge {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		authz, err := client.GetAuthorization(ctx, authzURL)
		if err != nil {
			t.Fatalf("authorization %s: %v", authzURL, err)
		}
		chal := challengeOfType(t, authz, "http-01")
		if chal.Status == want {
			return chal
		}
		if time.Now().After(deadline) {
			t.Fatalf("challenge %s is %s after 10 s, want %s", chal.URI, chal.Status, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hostOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// localhostCSR returns a DER CSR for localhost with a fresh P-256 key.
func localhostCSR(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{DNSNames: []string{"localhost"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// opensslVerifyChain writes the leaf and its SubCA (DER, leaf first) as PEM
// files, verifies them with openssl against the root and returns the leaf.
func opensslVerifyChain(t *testing.T, rootPath string, chain [][]byte) *x509.Certificate {
	t.Helper()
	if len(chain) < 2 {
		t.Fatalf("certificate chain has %d certificates, want leaf and SubCA", len(chain))
	}
	dir := t.TempDir()
	var paths []string
	for i, name := range []string{"leaf.pem", "subca.pem"} {
		p := filepath.Join(dir, name)
		data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[i]})
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command("openssl", "verify", "-CAfile", rootPath,
		"-untrusted", paths[1], paths[0]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatalf("parse leaf: %v", err)
	}
	return leaf
}

// credentialsOfOrder opens the state of a stopped node and returns the
// serials of the credentials issued for the order.
func credentialsOfOrder(t *testing.T, nodeDir, orderID string) []string {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	state, err := fsm.Open(filepath.Join(nodeDir, "state", "state.db"), logger)
	if err != nil {
		t.Fatalf("open node state: %v", err)
	}
	defer state.Close()
	var serials []string
	err = state.View(func(tx *fsm.Tx) error {
		certs, err := tx.Certificates()
		if err != nil {
			return err
		}
		for _, c := range certs {
			for _, s := range c.Serials {
				cred, err := tx.Credential(s)
				if err != nil {
					return err
				}
				if cred.OrderID == orderID {
					serials = append(serials, s)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read node state: %v", err)
	}
	return serials
}
