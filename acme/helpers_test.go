package acme

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
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/raft"

	"anchor/ca"
	"anchor/fsm"
)

// Names of the chain the protocol tests bootstrap.
const (
	testOrg   = "acme-org"
	testRealm = "prod"
	testChain = "web"
)

// logApplier applies commands straight to a real FSM in log order, as a
// one-node cluster whose leader is always this node. It is the test seam for
// protocol tests that need no CA keys.
type logApplier struct {
	mu    sync.Mutex
	fsm   *fsm.FSM
	index uint64
	// applied counts the commands applied, by type.
	applied map[fsm.CommandType]int
}

func (a *logApplier) Apply(_ context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	data, err := cmd.Encode()
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.index++
	a.applied[cmd.Type]++
	res := a.fsm.Apply(&raft.Log{Index: a.index, Type: raft.LogCommand, Data: data})
	return res.(*fsm.Result), nil
}

func (a *logApplier) count(typ fsm.CommandType) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied[typ]
}

// protoEnv is an ACME server over a real FSM with one chain and one EAB key.
type protoEnv struct {
	t       *testing.T
	state   *fsm.FSM
	applier *logApplier
	server  *Server
	http    *httptest.Server
	chainID string
	eab     fsm.EABKey
	issuer  *failingIssuer
	// root is the ACME root URL of the chain.
	root string
}

func newProtoEnv(t *testing.T, opts Options, eabScope ...string) *protoEnv {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := fsm.Open(filepath.Join(t.TempDir(), "state.db"), logger)
	if err != nil {
		t.Fatalf("open state: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e := &protoEnv{
		t: t, state: st,
		applier: &logApplier{fsm: st, applied: map[fsm.CommandType]int{}},
		chainID: fsm.ChainID(testOrg, testRealm, testChain),
	}
	e.bootstrap(eabScope)

	e.issuer = &failingIssuer{err: fsm.Errorf(fsm.CodeUnavailable, "no CA in protocol tests")}
	srv, err := NewServer(st, e.applier, e.issuer, logger, opts)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	mux := http.NewServeMux()
	srv.Register(mux)
	e.server = srv
	e.http = httptest.NewServer(mux)
	t.Cleanup(func() {
		e.http.Close()
		srv.Close()
	})
	e.root = e.http.URL + "/" + testOrg + "/" + testRealm + "/x509/" + testChain + "/acme"
	return e
}

// failingIssuer fails Issue with err and Check with checkErr, for the CA
// error paths of finalize. Tests that issue certificates use the real CA of
// testenv.
type failingIssuer struct {
	mu       sync.Mutex
	err      error // returned by Issue
	checkErr error // returned by Check
	checked  int   // calls of Check
}

func (f *failingIssuer) Issue(context.Context, *ca.Request) (*ca.Issued, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return nil, f.err
}

// Check verifies the CSR's signature as the CA does, because finalize
// leaves that check to the CA, and then returns checkErr.
func (f *failingIssuer) Check(req *ca.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checked++
	if err := req.CSR.CheckSignature(); err != nil {
		return fsm.Errorf(fsm.CodeInvalidArgument, "CSR signature does not verify: %v", err)
	}
	return f.checkErr
}

// set makes Issue fail with err, as a CA that rejects the request only once
// the order is processing.
func (f *failingIssuer) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// setCheck makes Check fail with err.
func (f *failingIssuer) setCheck(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checkErr = err
}

func (e *protoEnv) bootstrap(eabScope []string) {
	e.mustApply(fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: testOrg})
	e.mustApply(fsm.CmdCreateRealm, fsm.CreateRealm{Org: testOrg, Name: testRealm})
	e.mustApply(fsm.CmdCreateChain, fsm.CreateChain{
		Org: testOrg, Realm: testRealm, Name: testChain,
		Root:  fsm.CA{Name: "root", KeyID: "root-key", CertDER: selfSignedCA(e.t, "root")},
		SubCA: fsm.CA{Name: "sub", KeyID: "sub-key", CertDER: selfSignedCA(e.t, "sub")},
	})
	e.eab = e.addEAB("eab-1", eabScope)
}

func (e *protoEnv) addEAB(keyID string, scope []string) fsm.EABKey {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	k := fsm.EABKey{KeyID: keyID, HMACKey: key, ChainID: e.chainID, Identifiers: scope}
	e.mustApply(fsm.CmdCreateEAB, k)
	return k
}

func (e *protoEnv) mustApply(typ fsm.CommandType, payload any) {
	e.t.Helper()
	res, err := e.applier.Apply(context.Background(), fsm.MustCommand(typ, payload))
	if err == nil {
		err = res.Decode(nil)
	}
	if err != nil {
		e.t.Fatalf("apply %s: %v", typ, err)
	}
}

func (e *protoEnv) view(fn func(tx *fsm.Tx) error) {
	e.t.Helper()
	if err := e.state.View(fn); err != nil {
		e.t.Fatalf("read state: %v", err)
	}
}

// acmeWrites counts the applied ACME commands that change accounts, orders,
// authorizations, challenges or certificates, for "nothing stored" checks.
func (e *protoEnv) acmeWrites() int {
	n := 0
	for _, typ := range []fsm.CommandType{
		fsm.CmdACMECreateAccount, fsm.CmdACMEUpdateAccount, fsm.CmdACMEChangeAccountKey,
		fsm.CmdACMECreateOrder, fsm.CmdACMEProcessOrder, fsm.CmdACMEFailOrder,
		fsm.CmdACMEDeactivateAuthz, fsm.CmdACMEUpdateChallenge, fsm.CmdRevoke,
		fsm.CmdIssueCredential,
	} {
		n += e.applier.count(typ)
	}
	return n
}

func selfSignedCA(t *testing.T, name string) []byte {
	t.Helper()
	return selfSignedCAWith(t, name, nil)
}

// selfSignedCAWith is selfSignedCA with edit applied to the template, when set.
func selfSignedCAWith(t *testing.T, name string, edit func(*x509.Certificate)) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// testClient is a raw ACME client: it signs requests with go-jose and
// returns the HTTP responses unchanged.
type testClient struct {
	t    *testing.T
	http *http.Client
	root string
	key  crypto.Signer
	alg  jose.SignatureAlgorithm
	kid  string
}

func newTestClient(t *testing.T, root string) *testClient {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &testClient{t: t, http: http.DefaultClient, root: root, key: key, alg: jose.ES256}
}

func (c *testClient) url(parts ...string) string { return c.root + "/" + strings.Join(parts, "/") }

func (c *testClient) nonce() string {
	c.t.Helper()
	resp, err := c.http.Head(c.url("new-nonce"))
	if err != nil {
		c.t.Fatalf("new nonce: %v", err)
	}
	resp.Body.Close()
	n := resp.Header.Get("Replay-Nonce")
	if n == "" {
		c.t.Fatalf("new-nonce returned no Replay-Nonce (status %d)", resp.StatusCode)
	}
	return n
}

// sign returns a flattened JWS over payload; an empty payload is
// POST-as-GET, and a nil one leaves out the "payload" member.
func (c *testClient) sign(url string, payload []byte, nonce string) []byte {
	c.t.Helper()
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"url": url}}
	if nonce != "" {
		opts.ExtraHeaders["nonce"] = nonce
	}
	key := jose.SigningKey{Algorithm: c.alg, Key: c.key}
	if c.kid == "" {
		opts.EmbedJWK = true
	} else {
		key.Key = jose.JSONWebKey{Key: c.key, KeyID: c.kid}
	}
	signer, err := jose.NewSigner(key, opts)
	if err != nil {
		c.t.Fatalf("new signer: %v", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		c.t.Fatalf("sign: %v", err)
	}
	return []byte(jws.FullSerialize())
}

func (c *testClient) postRaw(url, contentType string, body []byte) *http.Response {
	c.t.Helper()
	resp, err := c.http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		c.t.Fatalf("POST %s: %v", url, err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// post signs payload (a JSON value, or nil for POST-as-GET) with a fresh
// nonce and sends it.
func (c *testClient) post(url string, payload any) *http.Response {
	c.t.Helper()
	raw := []byte{}
	if payload != nil {
		var err error
		if raw, err = json.Marshal(payload); err != nil {
			c.t.Fatal(err)
		}
	}
	return c.postRaw(url, "application/jose+json", c.sign(url, raw, c.nonce()))
}

// eabBinding returns an externalAccountBinding over the client's key.
func (c *testClient) eabBinding(keyID string, hmacKey []byte) json.RawMessage {
	c.t.Helper()
	jwk, err := jose.JSONWebKey{Key: c.key.Public()}.MarshalJSON()
	if err != nil {
		c.t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: hmacKey},
		&jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{
			"kid": keyID, "url": c.url("new-account"),
		}})
	if err != nil {
		c.t.Fatalf("new EAB signer: %v", err)
	}
	jws, err := signer.Sign(jwk)
	if err != nil {
		c.t.Fatalf("sign EAB: %v", err)
	}
	return json.RawMessage(jws.FullSerialize())
}

// register creates the client's account with the environment's EAB key and
// remembers its URL as kid.
func (c *testClient) register(eab fsm.EABKey) {
	c.t.Helper()
	resp := c.post(c.url("new-account"), map[string]any{
		"termsOfServiceAgreed":   true,
		"externalAccountBinding": c.eabBinding(eab.KeyID, eab.HMACKey),
	})
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("new account: status %d: %s", resp.StatusCode, readBody(c.t, resp))
	}
	c.kid = resp.Header.Get("Location")
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode response (status %d): %v", resp.StatusCode, err)
	}
}

// expectProblem checks the status and problem type of an error response.
func expectProblem(t *testing.T, resp *http.Response, status int, typ string) problem {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d", resp.StatusCode, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	if resp.Header.Get("Replay-Nonce") == "" {
		t.Errorf("error response has no Replay-Nonce")
	}
	var p problem
	decodeJSON(t, resp, &p)
	if p.Type != typ {
		t.Errorf("problem type = %q (%s), want %q", p.Type, p.Detail, typ)
	}
	return p
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// csrFor returns a base64url CSR for names (DNS names or IP addresses) with
// a fresh P-256 key.
func csrFor(t *testing.T, names ...string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(csrDER(t, key, names...))
}

func csrDER(t *testing.T, key crypto.Signer, names ...string) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func identifier(typ, value string) fsm.ACMEIdentifier {
	return fsm.ACMEIdentifier{Type: typ, Value: value}
}
