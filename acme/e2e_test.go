package acme

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/http01"
	"github.com/go-acme/lego/v5/challenge/tlsalpn01"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"

	"anchor/fsm"
	"anchor/internal/testenv"
)

// legoUser is a lego account: a P-256 key and its registration.
type legoUser struct {
	key crypto.Signer
	reg *acme.ExtendedAccount
}

func (u *legoUser) GetEmail() string                       { return "" }
func (u *legoUser) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *legoUser) GetPrivateKey() crypto.Signer           { return u.key }

// clusterACME is an ACME server on one member of a real test cluster.
type clusterACME struct {
	env  *testenv.Env
	srv  *Server
	root string
	dns  *testDNS
	// http trusts the server's test certificate.
	http *http.Client
}

func (a *clusterACME) newClient(t *testing.T) *testClient {
	c := newTestClient(t, a.root)
	c.http = a.http
	return c
}

// startClusterACME serves ACME from member i of env over loopback HTTPS,
// which lego requires.
func startClusterACME(t *testing.T, env *testenv.Env, i int, opts Options) *clusterACME {
	t.Helper()
	d := newTestDNS(t)
	opts.DNSResolver = d.addr
	m := env.Members[i]
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := NewServer(m.State(), m, m.Issuer, logger, opts)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	mux := http.NewServeMux()
	srv.Register(mux)
	hs := httptest.NewTLSServer(mux)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	root := hs.URL + "/" + testenv.Org + "/" + testenv.Realm + "/x509/" + testenv.Chain + "/acme"
	return &clusterACME{env: env, srv: srv, root: root, dns: d, http: hs.Client()}
}

// addClusterEAB creates an EAB key and waits until every member applied it.
func addClusterEAB(t *testing.T, env *testenv.Env, keyID string, scope []string) fsm.EABKey {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	k := fsm.EABKey{KeyID: keyID, HMACKey: key, ChainID: env.ChainID, Identifiers: scope}
	res, err := env.Members[0].Apply(t.Context(), fsm.MustCommand(fsm.CmdCreateEAB, k))
	if err == nil {
		err = res.Decode(nil)
	}
	if err != nil {
		t.Fatalf("create EAB key: %v", err)
	}
	for _, m := range env.Members {
		waitFor(t, 10*time.Second, "every member to apply the EAB key", func() bool {
			return m.State().View(func(tx *fsm.Tx) error {
				_, err := tx.EABKey(keyID)
				return err
			}) == nil
		})
	}
	return k
}

// newLegoClient registers a lego account with the EAB key.
func newLegoClient(t *testing.T, a *clusterACME, eab fsm.EABKey) *lego.Client {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	user := &legoUser{key: key}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = a.root + "/directory"
	cfg.HTTPClient = a.http
	client, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatalf("new lego client: %v", err)
	}
	reg, err := client.Registration.RegisterWithExternalAccountBinding(t.Context(),
		registration.RegisterEABOptions{
			TermsOfServiceAgreed: true, Kid: eab.KeyID,
			HmacEncoded: base64.RawURLEncoding.EncodeToString(eab.HMACKey),
		})
	if err != nil {
		t.Fatalf("register with EAB: %v", err)
	}
	user.reg = reg
	return client
}

// verifyLeaf checks the issued chain against the cluster's root, with Go and
// with openssl, and returns the leaf.
func verifyLeaf(t *testing.T, env *testenv.Env, chainPEM []byte,
	names ...string) *x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for rest := chainPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("parse issued certificate: %v", err)
		}
		certs = append(certs, c)
	}
	if len(certs) != 2 {
		t.Fatalf("chain has %d certificates, want leaf and SubCA", len(certs))
	}
	roots := x509.NewCertPool()
	roots.AddCert(env.Root)
	inter := x509.NewCertPool()
	inter.AddCert(certs[1])
	for _, n := range names {
		if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: n, Roots: roots,
			Intermediates: inter}); err != nil {
			t.Errorf("verify leaf for %s: %v", n, err)
		}
	}
	opensslVerify(t, env.Root, certs)
	return certs[0]
}

func opensslVerify(t *testing.T, root *x509.Certificate, chain []*x509.Certificate) {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, certs ...*x509.Certificate) string {
		var out []byte
		for _, c := range certs {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, out, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cmd := exec.Command("openssl", "verify", "-CAfile", write("root.pem", root),
		"-untrusted", write("sub.pem", chain[1]), write("leaf.pem", chain[0]))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("openssl verify: %v: %s", err, out)
	}
}

func TestLego_EndToEnd(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{EABIdentifiers: []string{"*.example.test"}})
	lis, httpPort := reservePort(t)
	lis.Close() // lego's challenge server listens on the port
	lis, alpnPort := reservePort(t)
	lis.Close()
	a := startClusterACME(t, env, 0, Options{HTTP01Port: httpPort, TLSALPN01Port: alpnPort})

	t.Run("PreAuthorizedOrder", func(t *testing.T) {
		client := newLegoClient(t, a, env.EAB)
		res, err := client.Certificate.Obtain(t.Context(), certificate.ObtainRequest{
			Domains: []string{"a.example.test", "*.example.test"}, Bundle: true,
			KeyType: certcrypto.EC256,
		})
		if err != nil {
			t.Fatalf("obtain: %v", err)
		}
		leaf := verifyLeaf(t, env, res.Certificate, "a.example.test", "x.example.test")
		checkOrderValid(t, env, leaf)
	})

	t.Run("HTTP01Order", func(t *testing.T) {
		client := newLegoClient(t, a, addClusterEAB(t, env, "kid-http01", nil))
		provider := http01.NewProviderServer("127.0.0.1", strconv.Itoa(httpPort))
		if err := client.Challenge.SetHTTP01Provider(provider); err != nil {
			t.Fatal(err)
		}
		res, err := client.Certificate.Obtain(t.Context(), certificate.ObtainRequest{
			Domains: []string{"www.outside.test"}, Bundle: true, KeyType: certcrypto.EC256,
		})
		if err != nil {
			t.Fatalf("obtain: %v", err)
		}
		leaf := verifyLeaf(t, env, res.Certificate, "www.outside.test")
		checkOrderValid(t, env, leaf)
	})

	t.Run("DNS01Order", func(t *testing.T) {
		testLegoDNS01(t, env, a)
	})

	t.Run("TLSALPN01Order", func(t *testing.T) {
		client := newLegoClient(t, a, addClusterEAB(t, env, "kid-tlsalpn01", nil))
		provider := tlsalpn01.NewProviderServer("127.0.0.1", strconv.Itoa(alpnPort))
		if err := client.Challenge.SetTLSALPN01Provider(provider); err != nil {
			t.Fatal(err)
		}
		res, err := client.Certificate.Obtain(t.Context(), certificate.ObtainRequest{
			Domains: []string{"alpn.outside.test"}, Bundle: true, KeyType: certcrypto.EC256,
		})
		if err != nil {
			t.Fatalf("obtain: %v", err)
		}
		leaf := verifyLeaf(t, env, res.Certificate, "alpn.outside.test")
		checkOrderValid(t, env, leaf)
	})

	t.Run("RevokeByAccountKey", func(t *testing.T) {
		client := newLegoClient(t, a, addClusterEAB(t, env, "kid-revoke", []string{"*.example.test"}))
		res, err := client.Certificate.Obtain(t.Context(), certificate.ObtainRequest{
			Domains: []string{"revoke.example.test"}, KeyType: certcrypto.RSA2048,
		})
		if err != nil {
			t.Fatalf("obtain: %v", err)
		}
		reason := uint(4)
		if err := client.Certificate.RevokeWithReason(t.Context(), res.Certificate,
			&reason); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		leaf := verifyLeaf(t, env, append(res.Certificate, res.IssuerCertificate...),
			"revoke.example.test")
		cred := credentialOf(t, env, leaf)
		if !cred.Revoked || cred.Reason != 4 {
			t.Errorf("credential revoked=%v reason=%d, want revoked with reason 4",
				cred.Revoked, cred.Reason)
		}
		err = client.Certificate.Revoke(t.Context(), res.Certificate)
		var pd *acme.ProblemDetails
		if !asProblemDetails(err, &pd) || pd.Type != probAlreadyRevoked {
			t.Errorf("second revoke error = %v, want %s", err, probAlreadyRevoked)
		}
	})

	t.Run("FinalizeTwice", func(t *testing.T) {
		testFinalizeTwice(t, env, a)
	})

	t.Run("RenewalInfoAndReplaces", func(t *testing.T) {
		testRenewalInfo(t, env, a)
	})

	t.Run("RevokeByCertificateKey", func(t *testing.T) {
		testRevokeByCertificateKey(t, env, a)
	})
}

func asProblemDetails(err error, pd **acme.ProblemDetails) bool {
	for err != nil {
		if p, ok := err.(*acme.ProblemDetails); ok {
			*pd = p
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func credentialOf(t *testing.T, env *testenv.Env, leaf *x509.Certificate) *fsm.Credential {
	t.Helper()
	var cred *fsm.Credential
	err := env.Members[0].State().View(func(tx *fsm.Tx) error {
		var err error
		cred, err = tx.Credential(fsm.SerialKey(leaf.SerialNumber))
		return err
	})
	if err != nil {
		t.Fatalf("credential of issued certificate: %v", err)
	}
	return cred
}

func checkOrderValid(t *testing.T, env *testenv.Env, leaf *x509.Certificate) {
	t.Helper()
	cred := credentialOf(t, env, leaf)
	err := env.Members[0].State().View(func(tx *fsm.Tx) error {
		o, err := tx.ACMEOrder(cred.OrderID)
		if err != nil {
			return err
		}
		if o.Status != fsm.ACMEStatusValid || o.Serial != cred.Serial {
			t.Errorf("order %s is %s with serial %q, want valid with %s", o.ID, o.Status,
				o.Serial, cred.Serial)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("order of credential: %v", err)
	}
}

// testFinalizeTwice sends two finalize requests for one order at once: one
// gets the certificate, the other orderNotReady, and one credential exists.
func testFinalizeTwice(t *testing.T, env *testenv.Env, a *clusterACME) {
	c := a.newClient(t)
	c.register(addClusterEAB(t, env, "kid-twice", []string{"*.example.test"}))
	o, loc := c.newOrder("twice.example.test")
	csr := csrFor(t, "twice.example.test")
	bodies := [][]byte{}
	for range 2 {
		payload := []byte(`{"csr":"` + csr + `"}`)
		bodies = append(bodies, c.sign(o.Finalize, payload, c.nonce()))
	}
	statuses := make([]int, 2)
	var wg sync.WaitGroup
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := a.http.Post(o.Finalize, "application/jose+json",
				bytes.NewReader(bodies[i]))
			if err != nil {
				t.Errorf("finalize: %v", err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	ok, notReady := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusForbidden:
			notReady++
		}
	}
	if ok != 1 || notReady != 1 {
		t.Errorf("finalize statuses = %v, want one 200 and one 403", statuses)
	}
	final := c.order(loc)
	if final.Status != "valid" || final.Certificate == "" {
		t.Fatalf("order = %+v, want valid with a certificate", final)
	}
	resp := c.post(final.Certificate, nil)
	if ct := resp.Header.Get("Content-Type"); ct != "application/pem-certificate-chain" {
		t.Errorf("certificate Content-Type = %q", ct)
	}
	verifyLeaf(t, env, []byte(readBody(t, resp)), "twice.example.test")

	id := loc[len(a.root+"/order/"):]
	serials, err := certificatesOfOrder(env, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(serials) != 1 {
		t.Errorf("%d credentials for the order, want 1", len(serials))
	}
}

func certificatesOfOrder(env *testenv.Env, orderID string) ([]string, error) {
	var serials []string
	err := env.Members[0].State().View(func(tx *fsm.Tx) error {
		all, err := tx.Certificates()
		if err != nil {
			return err
		}
		for _, c := range all {
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
	return serials, err
}

// ariID returns the RFC 9773 certificate ID of cert.
func ariID(cert *x509.Certificate) string {
	serial := cert.SerialNumber.Bytes()
	if len(serial) > 0 && serial[0]&0x80 != 0 {
		serial = append([]byte{0}, serial...)
	}
	return base64.RawURLEncoding.EncodeToString(cert.AuthorityKeyId) + "." +
		base64.RawURLEncoding.EncodeToString(serial)
}

// obtainRaw orders and finalizes a pre-authorized certificate with the raw
// client and returns the leaf and its key.
func obtainRaw(t *testing.T, env *testenv.Env, c *testClient, name string) (
	*x509.Certificate, crypto.Signer) {
	t.Helper()
	o, loc := c.newOrder(name)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr := base64.RawURLEncoding.EncodeToString(csrDER(t, key, name))
	resp := c.post(o.Finalize, map[string]string{"csr": csr})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("finalize: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	final := c.order(loc)
	resp = c.post(final.Certificate, nil)
	return verifyLeaf(t, env, []byte(readBody(t, resp)), name), key
}

func testRenewalInfo(t *testing.T, env *testenv.Env, a *clusterACME) {
	c := a.newClient(t)
	c.register(addClusterEAB(t, env, "kid-ari", []string{"*.example.test"}))
	leaf, _ := obtainRaw(t, env, c, "ari.example.test")

	resp, err := a.http.Get(a.root + "/renewal-info/" + ariID(leaf))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info renewalInfoJSON
	decodeJSON(t, resp, &info)
	start, err1 := time.Parse(time.RFC3339, info.SuggestedWindow.Start)
	end, err2 := time.Parse(time.RFC3339, info.SuggestedWindow.End)
	if err1 != nil || err2 != nil || !start.Before(end) || !end.Before(leaf.NotAfter) ||
		!start.After(leaf.NotBefore) {
		t.Errorf("window %+v is not inside the validity %s..%s", info.SuggestedWindow,
			leaf.NotBefore, leaf.NotAfter)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("renewal info has no Retry-After")
	}

	replace := map[string]any{"replaces": ariID(leaf), "identifiers": []map[string]string{
		{"type": "dns", "value": "ari.example.test"}}}
	if resp := c.post(c.url("new-order"), replace); resp.StatusCode != http.StatusCreated {
		t.Fatalf("order with replaces: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	resp2 := c.post(c.url("new-order"), replace)
	expectProblem(t, resp2, http.StatusConflict, probAlreadyReplaced)
}

func testRevokeByCertificateKey(t *testing.T, env *testenv.Env, a *clusterACME) {
	c := a.newClient(t)
	c.register(addClusterEAB(t, env, "kid-certkey", []string{"*.example.test"}))
	leaf, key := obtainRaw(t, env, c, "certkey.example.test")

	stranger := a.newClient(t)
	payload := map[string]any{
		"certificate": base64.RawURLEncoding.EncodeToString(leaf.Raw), "reason": 1,
	}
	resp := stranger.post(stranger.url("revoke-cert"), payload)
	expectProblem(t, resp, http.StatusForbidden, probUnauthorized)

	holder := a.newClient(t)
	holder.key = key
	resp = holder.post(holder.url("revoke-cert"), payload)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke with certificate key: status %d: %s", resp.StatusCode,
			readBody(t, resp))
	}
	if cred := credentialOf(t, env, leaf); !cred.Revoked || cred.Reason != 1 {
		t.Errorf("credential revoked=%v reason=%d, want revoked with reason 1",
			cred.Revoked, cred.Reason)
	}
}

// TestCluster_AnyNodeServesACME runs ACME on every member of a three-node
// cluster: followers forward writes to the leader, and a nonce issued by one
// node is accepted once by another.
func TestCluster_AnyNodeServesACME(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	env := testenv.New(t, 3, testenv.Options{EABIdentifiers: []string{"*.example.test"}})
	var acmes []*clusterACME
	for i := range env.Members {
		acmes = append(acmes, startClusterACME(t, env, i, Options{}))
	}
	client := newLegoClient(t, acmes[2], env.EAB)
	res, err := client.Certificate.Obtain(t.Context(), certificate.ObtainRequest{
		Domains: []string{"follower.example.test"}, Bundle: true, KeyType: certcrypto.EC256,
	})
	if err != nil {
		t.Fatalf("obtain through node 3: %v", err)
	}
	verifyLeaf(t, env, res.Certificate, "follower.example.test")

	c := acmes[1].newClient(t)
	c.register(addClusterEAB(t, env, "kid-nodes", nil))
	accountID := c.kid[len(acmes[1].root+"/account/"):]
	waitFor(t, 10*time.Second, "node 1 to apply the new account", func() bool {
		return env.Members[0].State().View(func(tx *fsm.Tx) error {
			_, err := tx.ACMEAccount(accountID)
			return err
		}) == nil
	})
	nonce := c.nonce()
	kid0 := acmes[0].root + c.kid[len(acmes[1].root):]
	body := c.sign(kid0, []byte{}, nonce)
	if resp := c.postRaw(kid0, "application/jose+json", body); resp.StatusCode != 200 {
		t.Fatalf("node 1 with node 2's nonce: status %d: %s", resp.StatusCode,
			readBody(t, resp))
	}
	resp := c.postRaw(kid0, "application/jose+json", body)
	expectProblem(t, resp, http.StatusBadRequest, probBadNonce)
}
