package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"anchor/fsm"
)

// keyChangeBody returns the inner JWS of a key change from c's key to
// newKey.
func keyChangeBody(t *testing.T, c *testClient, newKey *ecdsa.PrivateKey) []byte {
	t.Helper()
	oldJWK, err := jose.JSONWebKey{Key: c.key.Public()}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(map[string]any{
		"account": c.kid, "oldKey": json.RawMessage(oldJWK),
	})
	if err != nil {
		t.Fatal(err)
	}
	inner := &testClient{t: t, key: newKey, alg: jose.ES256}
	return inner.sign(c.url("key-change"), payload, "")
}

func TestKeyChange_RollsOver(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	inner := keyChangeBody(t, c, newKey)
	resp := c.postRaw(c.url("key-change"), "application/jose+json",
		c.sign(c.url("key-change"), inner, c.nonce()))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("key change: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	expectProblem(t, c.post(c.kid, nil), http.StatusBadRequest, probMalformed)
	c.key = newKey
	if resp := c.post(c.kid, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("request with the new key: status %d", resp.StatusCode)
	}
}

func TestKeyChange_KeyOfAnotherAccount(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	other := newTestClient(t, e.root)
	other.register(e.addEAB("eab-2", nil))
	inner := keyChangeBody(t, c, other.key.(*ecdsa.PrivateKey))
	resp := c.postRaw(c.url("key-change"), "application/jose+json",
		c.sign(c.url("key-change"), inner, c.nonce()))
	expectProblem(t, resp, http.StatusConflict, probMalformed)
	if loc := resp.Header.Get("Location"); loc != other.kid {
		t.Errorf("Location = %q, want %q", loc, other.kid)
	}
	if n := e.applier.count(fsm.CmdACMEChangeAccountKey); n != 0 {
		t.Errorf("%d key changes applied, want 0", n)
	}
}

func TestKeyChange_InnerNonceRejected(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	inner := (&testClient{t: t, key: newKey, alg: jose.ES256}).sign(c.url("key-change"),
		[]byte(`{}`), c.nonce())
	resp := c.postRaw(c.url("key-change"), "application/jose+json",
		c.sign(c.url("key-change"), inner, c.nonce()))
	expectProblem(t, resp, http.StatusBadRequest, probMalformed)
}
