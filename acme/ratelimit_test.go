package acme

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestRateLimit_Address(t *testing.T) {
	e := newProtoEnv(t, Options{RateLimits: RateLimits{AddressPerMinute: 60, AddressBurst: 3}})
	var last *http.Response
	for range 4 {
		resp, err := http.Get(e.root + "/directory")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		last = resp
	}
	if last.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth request: status %d, want 429", last.StatusCode)
	}
	if s, err := strconv.Atoi(last.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After = %q, want whole seconds", last.Header.Get("Retry-After"))
	}
}

func TestRateLimit_AccountProblem(t *testing.T) {
	e := newProtoEnv(t, Options{RateLimits: RateLimits{AccountPerMinute: 1, AccountBurst: 1}})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	if resp := c.post(c.kid, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: status %d", resp.StatusCode)
	}
	resp := c.post(c.kid, nil)
	expectProblem(t, resp, http.StatusTooManyRequests, probRateLimited)
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("rateLimited response has no Retry-After")
	}
}

func TestRateLimiter_Refills(t *testing.T) {
	l := newRateLimiter(RateLimits{AccountPerMinute: 60, AccountBurst: 1})
	now := time.Unix(1000, 0)
	if err := l.allowAccount("a", now); err != nil {
		t.Fatalf("first: %v", err)
	}
	if err := l.allowAccount("a", now); err == nil {
		t.Fatalf("second at the same instant was allowed")
	}
	if err := l.allowAccount("a", now.Add(time.Second)); err != nil {
		t.Errorf("after one second: %v", err)
	}
	if err := l.allowAccount("b", now); err != nil {
		t.Errorf("other account: %v", err)
	}
	l.prune(now.Add(time.Hour))
	if len(l.buckets) != 0 {
		t.Errorf("%d buckets after prune, want 0", len(l.buckets))
	}
}
