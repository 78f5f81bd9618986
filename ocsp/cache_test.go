package ocsp

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
)

// post sends a DER request and parses the response against the SubCA.
func (p *testPKI) post(t *testing.T, der []byte) ([]byte, *xocsp.Response) {
	t.Helper()
	resp, err := http.Post(p.ocspURL(), "application/ocsp-request", bytes.NewReader(der))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	parsed, err := xocsp.ParseResponse(body, p.subCert)
	if err != nil {
		t.Fatalf("parse response: %v", err)
	}
	return body, parsed
}

func TestResponder_CachedResponseReused(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("cached.example.net", randomSerial())
	der := p.opensslRequest(leaf, "-no_nonce")
	first, _ := p.post(t, der)
	second, _ := p.post(t, der)
	if !bytes.Equal(first, second) {
		t.Error("second response differs from the first: it was not served from the cache")
	}
	if n := p.responder.cache.len(); n != 1 {
		t.Errorf("cache holds %d responses, want 1", n)
	}
}

func TestResponder_RevocationReplacesCachedResponse(t *testing.T) {
	p := newTestPKI(t)
	cert, leaf := p.issueLeaf("revoke-later.example.net", randomSerial())
	der := p.opensslRequest(leaf, "-no_nonce")
	if _, resp := p.post(t, der); resp.Status != xocsp.Good {
		t.Fatalf("status %d before revocation, want good", resp.Status)
	}
	p.revoke(cert, 4) // superseded
	body, resp := p.post(t, der)
	if resp.Status != xocsp.Revoked || resp.RevocationReason != 4 {
		t.Errorf("after revocation: status %d reason %d, want revoked (1) with superseded (4)",
			resp.Status, resp.RevocationReason)
	}
	if resp.ThisUpdate.Before(resp.RevokedAt) {
		t.Errorf("thisUpdate %s precedes the revocation time %s", resp.ThisUpdate, resp.RevokedAt)
	}
	p.verifyWithOpenSSL(t, body, leaf, "revoked")
}

func TestResponder_RefreshAfterHalfValidity(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("refresh.example.net", randomSerial())
	der := p.opensslRequest(leaf, "-no_nonce")
	start := time.Now()
	clock := start
	p.responder.now = func() time.Time { return clock }

	first, firstResp := p.post(t, der)
	clock = start.Add(DefaultValidity/2 - 3*time.Minute)
	if again, _ := p.post(t, der); !bytes.Equal(again, first) {
		t.Error("response was signed again before half of its validity passed")
	}
	clock = start.Add(DefaultValidity / 2)
	_, refreshed := p.post(t, der)
	if !refreshed.ThisUpdate.After(firstResp.ThisUpdate) {
		t.Errorf("thisUpdate %s after half the validity, want later than %s",
			refreshed.ThisUpdate, firstResp.ThisUpdate)
	}
}

func TestResponder_ValidityWindow(t *testing.T) {
	p := newTestPKIWith(t, nil, Options{Validity: 2 * time.Hour})
	_, leaf := p.issueLeaf("window.example.net", randomSerial())
	// Ten minutes after the issuance, the previous minute is later than it.
	clock := time.Now().Add(10 * time.Minute)
	p.responder.now = func() time.Time { return clock }
	_, resp := p.post(t, p.opensslRequest(leaf, "-no_nonce"))
	minute := clock.UTC().Truncate(time.Minute)
	if !resp.ThisUpdate.Equal(minute.Add(-time.Minute)) {
		t.Errorf("thisUpdate %s, want the minute before %s", resp.ThisUpdate, clock)
	}
	if got := resp.NextUpdate.Sub(resp.ThisUpdate); got != 2*time.Hour {
		t.Errorf("nextUpdate - thisUpdate = %s, want Options.Validity 2h", got)
	}
}

func TestResponder_HashAlgorithmsCachedSeparately(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("hashes.example.net", randomSerial())
	for _, c := range []struct {
		flag string
		want crypto.Hash
	}{{"-sha1", crypto.SHA1}, {"-sha256", crypto.SHA256}, {"-sha1", crypto.SHA1}} {
		der := p.opensslRequest(leaf, "-no_nonce", c.flag)
		if _, resp := p.post(t, der); resp.IssuerHash != c.want {
			t.Errorf("request %s: response CertID hash %v, want %v", c.flag, resp.IssuerHash, c.want)
		}
	}
}

func TestResponder_NonceBypassesCache(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("fresh.example.net", randomSerial())
	p.post(t, p.opensslRequest(leaf))
	p.post(t, p.opensslRequest(leaf))
	if n := p.responder.cache.len(); n != 0 {
		t.Errorf("cache holds %d responses after nonce requests, want 0", n)
	}
}

func TestOptions_Validate(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"relative prefix", Options{Prefix: "ocsp"}, "Prefix"},
		{"short validity", Options{Validity: time.Minute}, "Validity"},
		{"negative request size", Options{MaxRequestBytes: -1}, "MaxRequestBytes"},
		{"negative cache", Options{CacheEntries: -1}, "CacheEntries"},
		{"negative pre-signing interval", Options{PresignInterval: -time.Second}, "PresignInterval"},
	}
	for _, c := range cases {
		err := c.opts.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate() = %v, want an error naming %s", c.name, err, c.want)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero Options: %v", err)
	}
}

func TestResponder_ConcurrentMissesShareSignature(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("concurrent.example.net", randomSerial())
	der := p.opensslRequest(leaf, "-no_nonce")
	bodies := make(chan []byte, 16)
	for range cap(bodies) {
		go func() {
			resp, err := http.Post(p.ocspURL(), "application/ocsp-request", bytes.NewReader(der))
			if err != nil {
				bodies <- nil
				return
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			buf.ReadFrom(resp.Body)
			bodies <- buf.Bytes()
		}()
	}
	var first []byte
	for range cap(bodies) {
		body := <-bodies
		if _, err := xocsp.ParseResponse(body, p.subCert); err != nil {
			t.Errorf("concurrent response: %v", err)
		}
		if first == nil {
			first = body
		} else if !bytes.Equal(body, first) {
			t.Error("concurrent requests got different responses, want one shared signature")
		}
	}
	if n := p.responder.cache.len(); n != 1 {
		t.Errorf("cache holds %d responses, want 1", n)
	}
}

// Requests for serials that the CA never issued fill only free room: with
// the cache full of real certificates' responses, none of those is evicted.
func TestResponder_UnknownSerialsEvictNothing(t *testing.T) {
	p, _ := newCountingPKI(t, Options{CacheEntries: 2})
	p.issueLeaf("a.example.net", randomSerial())
	p.issueLeaf("b.example.net", randomSerial())
	var position string
	if n := p.responder.presignRound(&position); n != 2 {
		t.Fatalf("pre-signing round stored %d responses, want 2", n)
	}
	before := map[cacheKey]*signedResponse{}
	p.responder.cache.mu.Lock()
	for k, v := range p.responder.cache.entries {
		before[k] = v
	}
	p.responder.cache.mu.Unlock()

	for range 10 {
		der, err := xocsp.CreateRequest(&x509.Certificate{SerialNumber: randomSerial()}, p.subCert, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, parsed := p.post(t, der); parsed.Status != xocsp.Unknown {
			t.Fatalf("status %d for a serial never issued, want unknown", parsed.Status)
		}
	}
	p.responder.cache.mu.Lock()
	defer p.responder.cache.mu.Unlock()
	for k, v := range before {
		if p.responder.cache.entries[k] != v {
			t.Errorf("the response for serial %s left the cache", k.serial)
		}
	}
	if n := len(p.responder.cache.entries); n != 2 {
		t.Errorf("cache holds %d responses, want 2", n)
	}
}

func TestResponder_ThisUpdateNotBeforeIssuance(t *testing.T) {
	p := newTestPKI(t)
	issued := time.Now().UTC()
	_, leaf := p.issueLeaf("fresh.example.net", randomSerial())
	body, resp := p.post(t, p.opensslRequest(leaf, "-no_nonce"))
	if resp.ThisUpdate.Before(issued.Truncate(time.Second)) {
		t.Errorf("thisUpdate %s precedes the issuance at %s", resp.ThisUpdate, issued)
	}
	if resp.ThisUpdate.After(time.Now()) {
		t.Errorf("thisUpdate %s is in the future", resp.ThisUpdate)
	}
	// The response must also pass openssl's own checks.
	p.verifyWithOpenSSL(t, body, leaf, "good")
}

func TestResponder_ThisUpdateNotAfterClock(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("ahead.example.net", randomSerial())
	// This node's clock runs 30 s behind the one that recorded the issuance.
	clock := time.Now().Add(-30 * time.Second)
	p.responder.now = func() time.Time { return clock }
	_, resp := p.post(t, p.opensslRequest(leaf, "-no_nonce"))
	if want := clock.UTC().Truncate(time.Second); !resp.ThisUpdate.Equal(want) {
		t.Errorf("thisUpdate %s, want this node's clock %s", resp.ThisUpdate, want)
	}
}
