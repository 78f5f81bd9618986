package acme

import (
	"encoding/base64"
	"encoding/binary"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"anchor/fsm"
)

// secondServer starts another server with opts over the same state and
// log, as a second node of the cluster, and returns its chain's ACME root
// URL.
func (e *protoEnv) secondServer(t *testing.T, opts Options) string {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := NewServer(e.state, e.applier, e.issuer, logger, opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return hs.URL + "/" + testOrg + "/" + testRealm + "/x509/" + testChain + "/acme"
}

func TestNonce_ForeignNonceRedeemedOnce(t *testing.T) {
	e := newProtoEnv(t, Options{})
	rootB := e.secondServer(t, Options{})
	a := newTestClient(t, e.root)
	a.register(e.eab)
	b := *a
	b.root = rootB
	kidB := rootB + a.kid[len(e.root):]
	nonceA := a.nonce()

	body := b.sign(kidB, []byte{}, nonceA)
	if resp := b.postRaw(kidB, "application/jose+json", body); resp.StatusCode != http.StatusOK {
		t.Fatalf("node B with node A's nonce: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	if n := e.applier.count(fsm.CmdACMERedeemNonce); n != 1 {
		t.Errorf("%d replicated redemptions, want 1", n)
	}
	resp := b.postRaw(kidB, "application/jose+json", body)
	expectProblem(t, resp, http.StatusBadRequest, probBadNonce)
	// The issuing node also checks the replicated redemptions.
	resp = a.postRaw(a.kid, "application/jose+json", a.sign(a.kid, []byte{}, nonceA))
	expectProblem(t, resp, http.StatusBadRequest, probBadNonce)
}

func TestNonce_LocalNonceNeedsNoLogWrite(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	if resp := c.post(c.kid, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if n := e.applier.count(fsm.CmdACMERedeemNonce); n != 0 {
		t.Errorf("%d replicated redemptions for local nonces, want 0", n)
	}
}

// craftNonce builds a nonce of src issued at the given time.
func craftNonce(t *testing.T, src *nonceSource, issued time.Time) string {
	t.Helper()
	key, err := src.hmacKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, nonceHeadSize)
	buf[0] = nonceVersion
	binary.BigEndian.PutUint64(buf[1:9], uint64(issued.Unix()))
	copy(buf[9:17], src.instance[:])
	buf = append(buf, nonceMAC(key, buf)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

func TestNonce_Expired(t *testing.T) {
	e := newProtoEnv(t, Options{NonceLifetime: time.Minute})
	src := e.server.nonces
	old := craftNonce(t, src, time.Now().Add(-2*time.Minute))
	if _, err := src.check(t.Context(), old); problemFor(err).Type != probBadNonce {
		t.Errorf("expired nonce: error %v, want badNonce", err)
	}
	fresh := craftNonce(t, src, time.Now())
	if _, err := src.check(t.Context(), fresh); err != nil {
		t.Errorf("fresh nonce: %v", err)
	}
}

func TestNonce_Tampered(t *testing.T) {
	e := newProtoEnv(t, Options{})
	src := e.server.nonces
	n, err := src.issue(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(n)
	raw[10] ^= 1
	tampered := base64.RawURLEncoding.EncodeToString(raw)
	if _, err := src.check(t.Context(), tampered); problemFor(err).Type != probBadNonce {
		t.Errorf("tampered nonce: error %v, want badNonce", err)
	}
}

func TestNonce_KeyCreatedOnce(t *testing.T) {
	e := newProtoEnv(t, Options{})
	e.secondServer(t, Options{})
	k1, err := e.server.nonces.hmacKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A late proposal of another key keeps the stored one.
	cmd := fsm.MustCommand(fsm.CmdACMECreateNonceKey, fsm.ACMENonceKey{Key: make([]byte, 32)})
	res, err := e.applier.Apply(t.Context(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	var got fsm.ACMENonceKey
	if err := res.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if string(got.Key) != string(k1) {
		t.Errorf("nonce key replaced by a later proposal")
	}
}
