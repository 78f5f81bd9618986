package ocsp

import (
	"crypto"
	"encoding/base64"
	"io"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
)

// countingSigners counts the signatures made with the test token's keys.
type countingSigners struct {
	p     *testPKI
	count atomic.Int64
}

func (c *countingSigners) Signer(keyID string) (crypto.Signer, error) {
	s, err := c.p.Signer(keyID)
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

// newCountingPKI returns the fixture with a responder whose signatures are
// counted.
func newCountingPKI(t *testing.T, opts Options) (*testPKI, *countingSigners) {
	t.Helper()
	counter := &countingSigners{}
	p := newTestPKIWith(t, counter, opts)
	counter.p = p
	return p, counter
}

func TestResponder_PresignedGETServedFromCache(t *testing.T) {
	p, counter := newCountingPKI(t, Options{})
	var leaves []string
	for _, name := range []string{"a.example.net", "b.example.net", "c.example.net"} {
		_, leaf := p.issueLeaf(name, randomSerial())
		leaves = append(leaves, leaf)
	}
	var position string
	if n := p.responder.presignRound(&position); n != 3 {
		t.Fatalf("pre-signing round stored %d responses, want 3", n)
	}
	if position != "" {
		t.Errorf("round that reached the end left position %q, want a restart", position)
	}
	signed := counter.count.Load()

	for _, leaf := range leaves {
		der := p.opensslRequest(leaf, "-no_nonce")
		resp := p.getRaw("/ocsp/"+base64.StdEncoding.EncodeToString(der), nil)
		body := readAll(t, resp)
		p.verifyWithOpenSSL(t, body, leaf, "good")
	}
	if got := counter.count.Load(); got != signed {
		t.Errorf("GET of pre-signed certificates made %d signatures, want none", got-signed)
	}
	if n := p.responder.presignRound(&position); n != 0 {
		t.Errorf("second round stored %d responses, want none while they are fresh", n)
	}
}

func TestResponder_PresignBatchBound(t *testing.T) {
	p, _ := newCountingPKI(t, Options{PresignBatch: 2})
	for _, name := range []string{"a.example.net", "b.example.net", "c.example.net"} {
		p.issueLeaf(name, randomSerial())
	}
	var position string
	for i, want := range []int{2, 1, 0} {
		if n := p.responder.presignRound(&position); n != want {
			t.Errorf("round %d stored %d responses, want %d", i+1, n, want)
		}
	}
}

func TestResponder_PresignRespectsCacheBound(t *testing.T) {
	p, _ := newCountingPKI(t, Options{CacheEntries: 2})
	for _, name := range []string{"a.example.net", "b.example.net", "c.example.net"} {
		p.issueLeaf(name, randomSerial())
	}
	var position string
	for range 3 {
		p.responder.presignRound(&position)
	}
	if n := p.responder.cache.len(); n != 2 {
		t.Errorf("cache holds %d responses, want its bound of 2", n)
	}
}

func TestResponder_PresignRefreshesAfterAThird(t *testing.T) {
	p, counter := newCountingPKI(t, Options{})
	p.issueLeaf("refresh.example.net", randomSerial())
	var position string
	p.responder.presignRound(&position)
	signed := counter.count.Load()

	start := time.Now()
	p.responder.now = func() time.Time { return start.Add(DefaultValidity / 4) }
	if n := p.responder.presignRound(&position); n != 0 {
		t.Errorf("a quarter into the validity: round stored %d responses, want none", n)
	}
	p.responder.now = func() time.Time { return start.Add(DefaultValidity/3 + time.Minute) }
	if n := p.responder.presignRound(&position); n != 1 {
		t.Errorf("past a third of the validity: round stored %d responses, want 1", n)
	}
	if got := counter.count.Load() - signed; got != 1 {
		t.Errorf("refresh made %d signatures, want 1", got)
	}
}

func TestResponder_PresignedRevocationStatus(t *testing.T) {
	p, _ := newCountingPKI(t, Options{})
	cert, _ := p.issueLeaf("revoked.example.net", randomSerial())
	p.revoke(cert, 3) // affiliationChanged
	var position string
	p.responder.presignRound(&position)
	var cached *signedResponse
	for _, resp := range p.responder.cache.entries {
		cached = resp
	}
	if cached == nil {
		t.Fatal("nothing pre-signed")
	}
	resp, err := xocsp.ParseResponseForCert(cached.der, cert, p.subCert)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != xocsp.Revoked || resp.RevocationReason != 3 {
		t.Errorf("pre-signed status %d reason %d, want revoked with affiliationChanged (3)",
			resp.Status, resp.RevocationReason)
	}
}
