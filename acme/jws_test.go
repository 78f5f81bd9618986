package acme

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"anchor/fsm"
)

// newAccountBody returns a valid newAccount payload for c.
func newAccountBody(t *testing.T, c *testClient, e *protoEnv) []byte {
	t.Helper()
	raw, err := json.Marshal(map[string]any{
		"externalAccountBinding": c.eabBinding(e.eab.KeyID, e.eab.HMACKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// expectNothingStored checks that a rejected request changed no ACME state.
func expectNothingStored(t *testing.T, e *protoEnv) {
	t.Helper()
	if n := e.acmeWrites(); n != 0 {
		t.Errorf("%d ACME writes, want 0", n)
	}
	e.view(func(tx *fsm.Tx) error {
		k, err := tx.EABKey(e.eab.KeyID)
		if err == nil && k.AccountID != "" {
			t.Errorf("EAB key bound to %q", k.AccountID)
		}
		return err
	})
}

func TestJWS_MalformedBodies(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	valid := c.sign(c.url("new-account"), newAccountBody(t, c, e), c.nonce())
	var flat map[string]any
	if err := json.Unmarshal(valid, &flat); err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) []byte {
		m := map[string]any{}
		for key, val := range flat {
			m[key] = val
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		out, _ := json.Marshal(m)
		return out
	}
	compact := strings.Join([]string{
		flat["protected"].(string), flat["payload"].(string), flat["signature"].(string),
	}, ".")
	cases := []struct {
		name string
		body []byte
	}{
		{"NotJSON", []byte("not json")},
		{"Compact", []byte(compact)},
		{"Empty", nil},
		{"NoSignature", with("signature", nil)},
		{"NoPayload", with("payload", nil)},
		{"GeneralSerialization", with("signatures", []any{map[string]string{"signature": "x"}})},
		{"UnprotectedHeader", with("header", map[string]string{"kid": "x"})},
		{"ProtectedNotBase64", with("protected", "%%%")},
		{"ProtectedNotJSON", with("protected", base64.RawURLEncoding.EncodeToString([]byte("[")))},
		{"BadSignature", with("signature", base64.RawURLEncoding.EncodeToString(make([]byte, 64)))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.postRaw(c.url("new-account"), "application/jose+json", tc.body)
			expectProblem(t, resp, http.StatusBadRequest, probMalformed)
			expectNothingStored(t, e)
		})
	}
}

func TestJWS_ReusedNonce(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	nonce := c.nonce()
	body := c.sign(c.kid, []byte{}, nonce)
	if resp := c.postRaw(c.kid, "application/jose+json", body); resp.StatusCode != 200 {
		t.Fatalf("first use status = %d", resp.StatusCode)
	}
	resp := c.postRaw(c.kid, "application/jose+json", body)
	expectProblem(t, resp, http.StatusBadRequest, probBadNonce)
}

func TestJWS_MissingOrForgedNonce(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	forged := base64.RawURLEncoding.EncodeToString(make([]byte, nonceHeadSize+nonceMACSize))
	for name, nonce := range map[string]string{"Missing": "", "Forged": forged, "Junk": "abc"} {
		t.Run(name, func(t *testing.T) {
			body := c.sign(c.url("new-account"), newAccountBody(t, c, e), nonce)
			resp := c.postRaw(c.url("new-account"), "application/jose+json", body)
			expectProblem(t, resp, http.StatusBadRequest, probBadNonce)
			expectNothingStored(t, e)
		})
	}
}

func TestJWS_WrongContentType(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	body := c.sign(c.url("new-account"), newAccountBody(t, c, e), c.nonce())
	resp := c.postRaw(c.url("new-account"), "application/json", body)
	expectProblem(t, resp, http.StatusUnsupportedMediaType, probMalformed)
	expectNothingStored(t, e)
}

func TestJWS_OversizedBody(t *testing.T) {
	e := newProtoEnv(t, Options{MaxBodyBytes: 4096})
	c := newTestClient(t, e.root)
	big := bytes.Repeat([]byte("a"), 5000)
	payload, _ := json.Marshal(map[string]any{"padding": string(big)})
	body := c.sign(c.url("new-account"), payload, c.nonce())
	resp := c.postRaw(c.url("new-account"), "application/jose+json", body)
	expectProblem(t, resp, http.StatusRequestEntityTooLarge, probMalformed)
	expectNothingStored(t, e)
}

func TestJWS_UnsupportedAlgorithm(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c.key, c.alg = key, jose.ES512
	body := c.sign(c.url("new-account"), newAccountBody(t, c, e), c.nonce())
	resp := c.postRaw(c.url("new-account"), "application/jose+json", body)
	p := expectProblem(t, resp, http.StatusBadRequest, probBadSignatureAlgorithm)
	want := []string{"ES256", "ES384", "RS256", "EdDSA"}
	if strings.Join(p.Algorithms, ",") != strings.Join(want, ",") {
		t.Errorf("algorithms = %v, want %v", p.Algorithms, want)
	}
	expectNothingStored(t, e)
}

func TestJWS_SymmetricAlgorithm(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: make([]byte, 32)},
		&jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{
			"url": c.url("new-account"), "nonce": c.nonce(),
		}})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(newAccountBody(t, c, e))
	if err != nil {
		t.Fatal(err)
	}
	resp := c.postRaw(c.url("new-account"), "application/jose+json", []byte(jws.FullSerialize()))
	expectProblem(t, resp, http.StatusBadRequest, probBadSignatureAlgorithm)
	expectNothingStored(t, e)
}

func TestJWS_SmallRSAKey(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	c.key, c.alg = key, jose.RS256
	body := c.sign(c.url("new-account"), newAccountBody(t, c, e), c.nonce())
	resp := c.postRaw(c.url("new-account"), "application/jose+json", body)
	expectProblem(t, resp, http.StatusBadRequest, probBadPublicKey)
	expectNothingStored(t, e)
}

func TestJWS_AlgorithmsAccepted(t *testing.T) {
	e := newProtoEnv(t, Options{})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		alg jose.SignatureAlgorithm
		key crypto.Signer
	}{
		{jose.RS256, rsaKey}, {jose.ES384, p384}, {jose.EdDSA, edKey},
	}
	for i, tc := range cases {
		t.Run(string(tc.alg), func(t *testing.T) {
			c := newTestClient(t, e.root)
			c.alg, c.key = tc.alg, tc.key
			c.register(e.addEAB("eab-alg-"+string(rune('a'+i)), nil))
			if resp := c.post(c.kid, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("POST-as-GET with %s: status %d", tc.alg, resp.StatusCode)
			}
		})
	}
}

func TestJWS_WrongURL(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	body := c.sign(c.url("new-order"), newAccountBody(t, c, e), c.nonce())
	resp := c.postRaw(c.url("new-account"), "application/jose+json", body)
	expectProblem(t, resp, http.StatusForbidden, probUnauthorized)
	expectNothingStored(t, e)
}

func TestJWS_UnknownKID(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	c.kid = c.url("account", "NOSUCHACCOUNT")
	resp := c.post(c.url("new-order"), map[string]any{
		"identifiers": []map[string]string{{"type": "dns", "value": "a.example.test"}},
	})
	expectProblem(t, resp, http.StatusBadRequest, probAccountDoesNotExist)
	expectNothingStored(t, e)
}

func TestJWS_JWKWhereKIDRequired(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	resp := c.post(c.url("new-order"), map[string]any{
		"identifiers": []map[string]string{{"type": "dns", "value": "a.example.test"}},
	})
	expectProblem(t, resp, http.StatusBadRequest, probMalformed)
	expectNothingStored(t, e)
}

func TestJWS_BadNonceKeepsNonceUnused(t *testing.T) {
	// A request rejected before its nonce is redeemed leaves the nonce
	// usable, so a client can fix the request and retry.
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	nonce := c.nonce()
	bad := c.sign(c.url("new-order"), newAccountBody(t, c, e), nonce)
	expectProblem(t, c.postRaw(c.url("new-account"), "application/jose+json", bad),
		http.StatusForbidden, probUnauthorized)
	good := c.sign(c.url("new-account"), newAccountBody(t, c, e), nonce)
	resp := c.postRaw(c.url("new-account"), "application/jose+json", good)
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("retry with the same nonce: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newProtoEnv(t, Options{})
	resp, err := http.Get(e.root + "/new-account")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	expectProblem(t, resp, http.StatusMethodNotAllowed, probMalformed)
	if resp.Header.Get("Allow") != "POST" {
		t.Errorf("Allow = %q, want POST", resp.Header.Get("Allow"))
	}
}

func FuzzParseJWS(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		&jose.SignerOptions{EmbedJWK: true, ExtraHeaders: map[jose.HeaderKey]any{
			"url": "https://ca.test/a/b/x509/c/acme/new-account", "nonce": "n",
		}})
	jws, _ := signer.Sign([]byte(`{"onlyReturnExisting":true}`))
	f.Add([]byte(jws.FullSerialize()))
	f.Add([]byte(`{"protected":"e30","payload":"","signature":"AA"}`))
	f.Add([]byte(`{"protected":"eyJhbGciOiJub25lIn0","payload":"e30","signature":""}`))
	f.Add([]byte(`{"signatures":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parseJWS(body)
		if err != nil {
			if _, ok := err.(*problem); !ok {
				t.Fatalf("parseJWS returned %T, want *problem", err)
			}
			return
		}
		if !algorithmSupported(p.header.Alg) {
			t.Fatalf("accepted algorithm %q", p.header.Alg)
		}
		if p.jwk != nil {
			_, _ = p.verify(p.jwk)
		}
	})
}
