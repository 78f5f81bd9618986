package acme

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// rateLimiter keeps token buckets per account and per client address, in
// memory on this node.
type rateLimiter struct {
	cfg RateLimits

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
	rate   float64 // tokens per second
	burst  float64
}

func newRateLimiter(cfg RateLimits) *rateLimiter {
	return &rateLimiter{cfg: cfg, buckets: map[string]*bucket{}}
}

func (l *rateLimiter) allowAccount(id string, now time.Time) error {
	return l.allow("account:"+id, l.cfg.AccountPerMinute, l.cfg.AccountBurst, now)
}

func (l *rateLimiter) allowAddress(addr string, now time.Time) error {
	return l.allow("address:"+addr, l.cfg.AddressPerMinute, l.cfg.AddressBurst, now)
}

// allow takes one token from the bucket of key, or returns rateLimited with
// the seconds until a token is available.
func (l *rateLimiter) allow(key string, perMinute, burst int, now time.Time) error {
	if perMinute <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: float64(burst), last: now, rate: float64(perMinute) / 60,
			burst: float64(burst)}
		l.buckets[key] = b
	}
	b.refill(now)
	if b.tokens >= 1 {
		b.tokens--
		return nil
	}
	wait := int(math.Ceil((1 - b.tokens) / b.rate))
	p := newProblem(probRateLimited, http.StatusTooManyRequests,
		"too many requests for %s: retry after %d seconds", key, wait)
	p.retryAfter = wait
	return p
}

func (b *bucket) refill(now time.Time) {
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(b.burst, b.tokens+elapsed*b.rate)
		b.last = now
	}
}

// prune drops buckets that have refilled completely, since a new bucket
// starts full.
func (l *rateLimiter) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, b := range l.buckets {
		b.refill(now)
		if b.tokens >= b.burst {
			delete(l.buckets, k)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
