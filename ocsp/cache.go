package ocsp

import (
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// cacheKey names one cached response: the CertID's hash algorithm is part of
// the signed data, so SHA-1 and SHA-256 requests need responses of their own.
type cacheKey struct {
	caID   string
	hash   crypto.Hash
	serial string // fsm.SerialKey
}

// signedResponse is a signed OCSP response with its validity, the status it
// states and its caching header values, formatted once.
type signedResponse struct {
	der []byte
	// issuer is the CA the response was signed for. A response is served
	// only for that same issuer value, so not after a restore changed the
	// CA's record.
	issuer     *issuer
	status     certStatus
	thisUpdate time.Time
	nextUpdate time.Time
	etag       string
	headers    responseHeaders

	// checked is the latest generation of the state (see stateView) in
	// which status was read or confirmed. Within that generation the
	// response is served without reading the state.
	checked atomic.Uint64
}

func newSignedResponse(
	der []byte,
	iss *issuer,
	status certStatus,
	thisUpdate, nextUpdate time.Time,
	gen uint64,
) *signedResponse {
	sum := sha256.Sum256(der)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	resp := &signedResponse{
		der:        der,
		issuer:     iss,
		status:     status,
		thisUpdate: thisUpdate,
		nextUpdate: nextUpdate,
		etag:       etag,
		headers: responseHeaders{
			contentLength: []string{strconv.Itoa(len(der))},
			etag:          []string{etag},
			lastModified:  []string{thisUpdate.UTC().Format(http.TimeFormat)},
			expires:       []string{nextUpdate.UTC().Format(http.TimeFormat)},
		},
	}
	resp.checked.Store(gen)
	return resp
}

// responseHeaders are the values of a response's headers, each a slice that
// writeResponse puts into the header map as it is.
type responseHeaders struct {
	contentLength []string
	etag          []string
	lastModified  []string // thisUpdate in http.TimeFormat
	expires       []string // nextUpdate in http.TimeFormat
}

// markChecked records that the status was confirmed in generation gen.
func (s *signedResponse) markChecked(gen uint64) {
	for {
		old := s.checked.Load()
		if old >= gen || s.checked.CompareAndSwap(old, gen) {
			return
		}
	}
}

// responseCache keeps signed responses until half of their validity has
// passed. It holds at most max entries and evicts an arbitrary one when full.
type responseCache struct {
	max int

	mu      sync.Mutex
	entries map[cacheKey]*signedResponse
}

func newResponseCache(max int) *responseCache {
	return &responseCache{max: max, entries: make(map[cacheKey]*signedResponse)}
}

// get returns the cached response for key while it is fresh at now, or
// nil. The caller checks that the response states the current status.
func (c *responseCache) get(key cacheKey, now time.Time) *signedResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil
	}
	refreshAt := e.thisUpdate.Add(e.nextUpdate.Sub(e.thisUpdate) / 2)
	if !now.Before(refreshAt) {
		delete(c.entries, key)
		return nil
	}
	return e
}

// drop removes resp, such as a good response after a revocation, unless
// key already holds another response.
func (c *responseCache) drop(key cacheKey, resp *signedResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[key] == resp {
		delete(c.entries, key)
	}
}

// presignDue reports whether Run should sign the response for key: it is
// missing, or a third of its validity has passed. Requests use a response
// until half of its validity, so the rounds have that time to reach it.
func (c *responseCache) presignDue(key cacheKey, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return true
	}
	return !now.Before(e.thisUpdate.Add(e.nextUpdate.Sub(e.thisUpdate) / 3))
}

// putIfRoom stores a response unless that would evict another one. It
// reports whether it stored the response.
func (c *responseCache) putIfRoom(key cacheKey, resp *signedResponse) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		return false
	}
	c.entries[key] = resp
	return true
}

// hasRoomFor reports whether putIfRoom would store a response for key.
func (c *responseCache) hasRoomFor(key cacheKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[key]
	return ok || len(c.entries) < c.max
}

func (c *responseCache) put(key cacheKey, resp *signedResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = resp
}

func (c *responseCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func sameStatus(a, b certStatus) bool {
	return a.status == b.status && a.reason == b.reason && a.revokedAt.Equal(b.revokedAt)
}
