package ocsp

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
	"golang.org/x/sync/singleflight"

	"anchor/fsm"
	"anchor/internal/logrepeat"
)

// Defaults of Options.
const (
	DefaultPrefix          = "/ocsp"
	DefaultValidity        = time.Hour
	DefaultMaxRequestBytes = 4096
	DefaultCacheEntries    = 100_000
	DefaultPresignInterval = time.Second
	DefaultPresignBatch    = 200
)

// minValidity keeps nextUpdate minutes ahead of the clock, because
// thisUpdate is backdated by one to two minutes.
const minValidity = 5 * time.Minute

// Options configures a Responder. Zero values select the defaults.
type Options struct {
	// Prefix is the URL path the Responder is mounted at. Zero means
	// DefaultPrefix ("/ocsp"); "/" mounts it at the root.
	Prefix string
	// Validity is the time from thisUpdate to nextUpdate of a response, at
	// least 5 minutes. Zero means DefaultValidity (1 hour). It bounds how long
	// a relying party may keep trusting a good response after a revocation.
	Validity time.Duration
	// MaxRequestBytes limits the DER request of a POST body or GET path.
	// Zero means DefaultMaxRequestBytes (4096 bytes), ten times more than a
	// single-certificate request with a SHA-512 CertID and a 128-octet nonce.
	MaxRequestBytes int
	// CacheEntries limits the number of cached signed responses. Zero means
	// DefaultCacheEntries (100,000, an estimated 50 MB with P-256 keys).
	CacheEntries int
	// SignWithCAKey makes every response signed by the CA's own key. By
	// default a CA's designated responder (RFC 6960, 4.2.2.2) signs, once
	// its key has reached this node's HSM.
	SignWithCAKey bool
	// PresignInterval is the period of Run's pre-signing rounds. Zero means
	// DefaultPresignInterval (1 second).
	PresignInterval time.Duration
	// PresignBatch limits the responses that one pre-signing round signs.
	// A round examines at most presignScanFactor times as many credentials.
	// Zero means DefaultPresignBatch (200); a negative value turns
	// pre-signing off.
	PresignBatch int
	// Ready, when set, reports whether the state is current enough to
	// respond from. While it returns false, requests get tryLater and
	// nothing is pre-signed, so that a node which restarted does not sign
	// good for a certificate revoked while it was down.
	Ready func() bool
}

// Validate reports the first invalid field.
func (o Options) Validate() error {
	switch {
	case o.Prefix != "" && !strings.HasPrefix(o.Prefix, "/"):
		return fmt.Errorf("ocsp: Options.Prefix %q must start with /", o.Prefix)
	case o.Validity != 0 && o.Validity < minValidity:
		return fmt.Errorf("ocsp: Options.Validity %s is shorter than %s", o.Validity, minValidity)
	case o.MaxRequestBytes < 0:
		return fmt.Errorf("ocsp: Options.MaxRequestBytes %d is negative", o.MaxRequestBytes)
	case o.CacheEntries < 0:
		return fmt.Errorf("ocsp: Options.CacheEntries %d is negative", o.CacheEntries)
	case o.PresignInterval < 0:
		return fmt.Errorf("ocsp: Options.PresignInterval %s is negative", o.PresignInterval)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	o.Prefix = strings.TrimRight(o.Prefix, "/")
	if o.Validity == 0 {
		o.Validity = DefaultValidity
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.CacheEntries == 0 {
		o.CacheEntries = DefaultCacheEntries
	}
	if o.PresignInterval == 0 {
		o.PresignInterval = DefaultPresignInterval
	}
	if o.PresignBatch == 0 {
		o.PresignBatch = DefaultPresignBatch
	}
	return o
}

// Responder responds to OCSP requests for the CAs in the replicated state. It is
// safe for concurrent use.
type Responder struct {
	st             *fsm.FSM
	signers        *signerCache
	responderCerts responderCerts
	logger         *slog.Logger
	opts           Options
	cache          *responseCache
	flight         singleflight.Group
	now            func() time.Time
	// repeats keeps a signing failure that recurs for every request or
	// pre-signed response of a CA to one warning per CA per minute.
	repeats *logrepeat.Filter

	// view is the current generation of the state (see current). viewMu
	// serializes starting a generation and rebuilding the issuer index.
	view   atomic.Pointer[stateView]
	viewMu sync.Mutex
}

// errNotReady is the error of a request that arrives before the state has
// caught up (Options.Ready).
var errNotReady = errors.New("this node's state has not caught up with the cluster since it started")

// ready reports whether the Responder may respond from the state.
func (r *Responder) ready() bool { return r.opts.Ready == nil || r.opts.Ready() }

// NewResponder returns a Responder that reads st and signs with signers. Run
// pre-signs responses for it. It panics when opts.Validate fails: call
// Validate first when the options come from configuration.
func NewResponder(st *fsm.FSM, signers Signers, logger *slog.Logger, opts Options) *Responder {
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	opts = opts.withDefaults()
	return &Responder{
		st:      st,
		signers: newSignerCache(signers),
		logger:  logger,
		opts:    opts,
		cache:   newResponseCache(opts.CacheEntries),
		now:     time.Now,
		repeats: logrepeat.New(time.Minute, nil),
	}
}

// respond returns the signed response to req. Without a nonce it comes from
// the cache while the cached response is fresh and states the current
// status: a response whose status was read in the current generation of
// the state is served without reading the state again. Concurrent cache
// misses for the same status share one signature.
func (r *Responder) respond(req *request) (*signedResponse, error) {
	if !r.ready() {
		return nil, errNotReady
	}
	v, err := r.current()
	if err != nil {
		return nil, err
	}
	iss, err := r.findIssuer(v, req)
	if err != nil {
		return nil, err
	}
	now := r.now()
	serial := fsm.SerialKey(req.SerialNumber)
	if req.nonce != nil {
		found, err := r.lookup(v, iss, serial, true)
		if err != nil {
			return nil, err
		}
		return r.sign(found, req, v.gen, now)
	}

	key := cacheKey{caID: iss.ca.ID, hash: req.HashAlgorithm, serial: serial}
	resp, found, err := r.fromCache(v, iss, key, now)
	if resp != nil || err != nil {
		return resp, err
	}
	flightKey := fmt.Sprintf("%s|%d|%s|%d|%d|%d", key.caID, key.hash, key.serial,
		found.status.status, found.status.reason, found.status.revokedAt.Unix())
	shared, err, _ := r.flight.Do(flightKey, func() (any, error) {
		// A request whose flight ended after this request missed the
		// cache may have stored the response meanwhile.
		if cached := r.cache.get(key, now); cached != nil && cached.issuer == iss &&
			sameStatus(cached.status, found.status) {
			cached.markChecked(v.gen)
			return cached, nil
		}
		resp, err := r.sign(found, req, v.gen, now)
		if err != nil {
			return nil, err
		}
		if found.status.status == xocsp.Unknown {
			// Anyone can request any number of serials this CA never
			// issued. Their responses take free room only, so they cannot
			// push the responses of real certificates out of the cache.
			r.cache.putIfRoom(key, resp)
		} else {
			r.cache.put(key, resp)
		}
		return resp, nil
	})
	if err != nil {
		return nil, err
	}
	return shared.(*signedResponse), nil
}

// fromCache returns the cached response for key when it is fresh and
// states the status of generation v, reading the state only when the
// response was last confirmed in an earlier generation. Otherwise it
// returns the status and responders to sign a response with.
func (r *Responder) fromCache(
	v *stateView,
	iss *issuer,
	key cacheKey,
	now time.Time,
) (*signedResponse, *lookupResult, error) {
	cached := r.cache.get(key, now)
	if cached != nil && cached.issuer != iss {
		// Signed for a CA record that a restore replaced.
		r.cache.drop(key, cached)
		cached = nil
	}
	if cached != nil && cached.checked.Load() >= v.gen {
		return cached, nil, nil
	}
	found, err := r.lookup(v, iss, key.serial, cached == nil)
	if err != nil || cached == nil {
		return nil, found, err
	}
	if sameStatus(cached.status, found.status) {
		cached.markChecked(v.gen)
		return cached, nil, nil
	}
	// The status changed, such as by a revocation.
	r.cache.drop(key, cached)
	found, err = r.lookup(v, iss, key.serial, true)
	return nil, found, err
}

// lookup reads the status of serial (fsm.SerialKey) under iss, and the
// CA's designated responders when withResponders. A root's SubCAs are
// looked up in the issuer index, which first takes in CAs added since it
// was built.
func (r *Responder) lookup(
	v *stateView,
	iss *issuer,
	serial string,
	withResponders bool,
) (*lookupResult, error) {
	idx := v.issuers
	if iss.ca.Kind == fsm.CAKindRoot {
		var err error
		if idx, err = r.refreshIssuers(v); err != nil {
			return nil, err
		}
	}
	return r.readState(v, idx, iss, serial, withResponders)
}

// thisUpdateOf returns the thisUpdate of a response stating st at now. That
// is the previous minute, which allows for clients whose clocks run behind.
// A later issuance or revocation of the credential replaces it, because a
// status is not known to be correct before either. It is never after now.
func thisUpdateOf(st certStatus, now time.Time) time.Time {
	now = now.UTC()
	thisUpdate := now.Truncate(time.Minute).Add(-time.Minute)
	for _, event := range []time.Time{st.issuedAt, st.revokedAt} {
		if event.After(thisUpdate) {
			thisUpdate = event.UTC().Truncate(time.Second)
		}
	}
	// The event may lie ahead of this node's clock when the clock of the
	// node that recorded it runs ahead.
	if thisUpdate.After(now) {
		thisUpdate = now.Truncate(time.Second)
	}
	return thisUpdate
}

// sign signs a response stating found.status, valid from thisUpdateOf for
// Options.Validity. gen is the generation of the state in which the status
// was read.
func (r *Responder) sign(
	found *lookupResult,
	req *request,
	gen uint64,
	now time.Time,
) (*signedResponse, error) {
	thisUpdate := thisUpdateOf(found.status, now)
	nextUpdate := thisUpdate.Add(r.opts.Validity)
	id, err := r.identity(found, now, nextUpdate)
	if err != nil {
		return nil, err
	}
	tmpl := &responseTemplate{
		issuer:     found.iss.cert,
		responder:  id.cert,
		hash:       req.HashAlgorithm,
		serial:     req.SerialNumber,
		status:     found.status,
		producedAt: now.UTC().Truncate(time.Second),
		thisUpdate: thisUpdate,
		nextUpdate: nextUpdate,
		nonce:      req.nonce,
	}
	der, err := signResponse(tmpl, id.signer)
	if err != nil {
		r.signers.forget(id.keyID)
		return nil, fmt.Errorf("sign OCSP response of CA %s with key %s: %w",
			found.iss.ca.ID, id.keyID, err)
	}
	return newSignedResponse(der, found.iss, found.status, thisUpdate, nextUpdate, gen), nil
}
