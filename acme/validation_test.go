package acme

import (
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"anchor/fsm"
)

// serveOn serves h on lis until the test ends.
func serveOn(t *testing.T, lis net.Listener, h http.HandlerFunc) {
	t.Helper()
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// pollChallenge fetches the challenge until cond holds and returns it with
// the response's Retry-After header.
func (c *testClient) pollChallenge(url, what string, cond func(challengeJSON) bool) (
	challengeJSON, string) {
	c.t.Helper()
	var got challengeJSON
	var retryAfter string
	waitFor(c.t, 10*time.Second, what, func() bool {
		resp := c.post(url, nil)
		got = challengeJSON{}
		decodeJSON(c.t, resp, &got)
		retryAfter = resp.Header.Get("Retry-After")
		return cond(got)
	})
	return got, retryAfter
}

func TestValidation_RetryAfterFailedAttempt(t *testing.T) {
	d := newTestDNS(t)
	lis, port := reservePort(t)
	e := newProtoEnv(t, Options{HTTP01Port: port, DNSResolver: d.addr,
		ValidationRetryDelay: 100 * time.Millisecond})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, _ := c.newOrder("www.example.test")
	ch := challengeOf(t, c.authz(o.Authorizations[0]), challengeHTTP01)

	// The first attempt gets 404. The second waits until the test has seen
	// the first attempt's problem, then gets the key authorization.
	observed := make(chan struct{})
	var hits atomic.Int32
	serveOn(t, lis, func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			http.NotFound(w, r)
			return
		}
		select {
		case <-observed:
			_, _ = w.Write([]byte(c.keyAuthorization(ch.Token)))
		case <-r.Context().Done():
		}
	})
	if resp := c.post(ch.URL, map[string]any{}); resp.StatusCode != http.StatusOK {
		t.Fatalf("challenge POST: status %d: %s", resp.StatusCode, readBody(t, resp))
	}

	got, retryAfter := c.pollChallenge(ch.URL, "the first attempt's problem",
		func(ch challengeJSON) bool { return ch.Error != nil })
	if got.Status != fsm.ACMEStatusProcessing {
		t.Errorf("challenge status after a failed attempt = %q, want processing", got.Status)
	}
	if got.Error.Type != probUnauthorized {
		t.Errorf("challenge error = %+v, want %s", got.Error, probUnauthorized)
	}
	if retryAfter == "" {
		t.Errorf("processing challenge has no Retry-After")
	}
	close(observed)

	got, _ = c.pollChallenge(ch.URL, "the challenge to become valid",
		func(ch challengeJSON) bool { return ch.Status != fsm.ACMEStatusProcessing })
	if got.Status != fsm.ACMEStatusValid || got.Error != nil {
		t.Errorf("challenge %s with error %+v, want valid without error", got.Status, got.Error)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("%d validation requests, want 2", n)
	}
	if n := e.applier.count(fsm.CmdACMERetryChallenge); n != 1 {
		t.Errorf("%d retries committed, want 1", n)
	}
}

func TestValidation_InvalidAfterLastAttempt(t *testing.T) {
	d := newTestDNS(t)
	lis, port := reservePort(t)
	e := newProtoEnv(t, Options{HTTP01Port: port, DNSResolver: d.addr,
		ValidationAttempts: 2, ValidationRetryDelay: 50 * time.Millisecond})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, _ := c.newOrder("www.example.test")
	ch := challengeOf(t, c.authz(o.Authorizations[0]), challengeHTTP01)
	var hits atomic.Int32
	serveOn(t, lis, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	})

	a := c.respond(o.Authorizations[0], ch)
	got := challengeOf(t, a, challengeHTTP01)
	if a.Status != fsm.ACMEStatusInvalid || got.Status != fsm.ACMEStatusInvalid {
		t.Errorf("authz %s, challenge %s: want both invalid", a.Status, got.Status)
	}
	if got.Error == nil || got.Error.Type != probUnauthorized {
		t.Errorf("challenge error = %+v, want %s", got.Error, probUnauthorized)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("%d validation requests, want 2", n)
	}
	if n := e.applier.count(fsm.CmdACMERetryChallenge); n != 1 {
		t.Errorf("%d retries committed, want 1", n)
	}
}

func TestValidation_PostRetriesAtOnce(t *testing.T) {
	d := newTestDNS(t)
	lis, port := reservePort(t)
	e := newProtoEnv(t, Options{HTTP01Port: port, DNSResolver: d.addr,
		ValidationRetryDelay: time.Hour})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, _ := c.newOrder("www.example.test")
	ch := challengeOf(t, c.authz(o.Authorizations[0]), challengeHTTP01)
	var ready atomic.Bool
	serveOn(t, lis, func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(c.keyAuthorization(ch.Token)))
	})
	if resp := c.post(ch.URL, map[string]any{}); resp.StatusCode != http.StatusOK {
		t.Fatalf("challenge POST: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	_, retryAfter := c.pollChallenge(ch.URL, "the first attempt's problem",
		func(ch challengeJSON) bool { return ch.Error != nil })
	if retryAfter == "1" || retryAfter == "" {
		t.Errorf("Retry-After = %q, want the time until the next attempt in an hour", retryAfter)
	}

	// The client fixed its response and posts again, so the node retries at
	// once instead of after the hour.
	ready.Store(true)
	a := c.respond(o.Authorizations[0], ch)
	if a.Status != fsm.ACMEStatusValid {
		t.Errorf("authz status after the client's retry = %q, want valid", a.Status)
	}
}

func TestRetryable_FinalProblems(t *testing.T) {
	cases := map[string]bool{
		probConnection:            true,
		probDNS:                   true,
		probIncorrectResponse:     true,
		probUnauthorized:          true,
		probTLS:                   true,
		probMalformed:             false,
		probServerInternal:        false,
		probRejectedIdentifier:    false,
		probUnsupportedIdentifier: false,
	}
	for typ, want := range cases {
		if got := retryable(&problem{Type: typ}); got != want {
			t.Errorf("retryable(%s) = %v, want %v", typ, got, want)
		}
	}
}
