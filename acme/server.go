package acme

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"anchor/ca"
	"anchor/fsm"
)

// Applier proposes commands to the replicated log. The cluster node
// implements it.
type Applier interface {
	// Apply forwards cmd to the Raft leader and returns, after commit, the
	// result of the command's handler. A rejected command returns a Result
	// whose Err is set, not an error. Apply is safe for concurrent use.
	Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error)
}

// Issuer signs and commits the certificate of a finalized order. *ca.Issuer
// implements it.
type Issuer interface {
	// Issue checks req.CSR against the chain's SubCA policy and commits the
	// certificate with req.OrderID, which moves the order from processing to
	// valid in the same log entry. A CSR the policy rejects returns an
	// *fsm.Error with fsm.CodeInvalidArgument.
	Issue(ctx context.Context, req *ca.Request) (*ca.Issued, error)
	// Check runs the checks of Issue without signing or committing, and
	// returns the error Issue would return for a rejected request. It must
	// verify the CSR's signature, because finalize does not.
	Check(req *ca.Request) error
}

// Server is the ACME server of one node. It serves every chain of the
// replicated state.
type Server struct {
	state  *fsm.FSM
	apply  Applier
	issuer Issuer
	opts   Options
	logger *slog.Logger

	nonces    *nonceSource
	limits    *rateLimiter
	validator *validator

	ctx    context.Context // canceled by Close; parent of background validations
	cancel context.CancelFunc
	wg     sync.WaitGroup

	validatingMu sync.Mutex
	// validating maps the IDs of the challenges this node validates to a
	// channel that makes a waiting validation retry at once.
	validating map[string]chan struct{}
}

// NewServer returns a Server that reads state, writes through apply, issues
// certificates with issuer and logs to logger. Call Close to stop background
// validations.
func NewServer(state *fsm.FSM, apply Applier, issuer Issuer, logger *slog.Logger,
	opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	nonces, err := newNonceSource(o.NonceLifetime, state, apply)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		state: state, apply: apply, issuer: issuer, opts: o, logger: logger,
		nonces:     nonces,
		limits:     newRateLimiter(o.RateLimits),
		validator:  newValidator(&o),
		ctx:        ctx,
		cancel:     cancel,
		validating: map[string]chan struct{}{},
	}
	s.wg.Add(1)
	go s.housekeeping()
	if o.IsLeader != nil {
		s.wg.Add(1)
		go s.takeOverStalledValidations()
	}
	return s, nil
}

// Close stops background validations and waits for them to end. Challenges
// whose validation was interrupted stay processing until the leader takes
// them over, a client posts to them again or they expire.
func (s *Server) Close() {
	s.cancel()
	// startValidation checks the context under validatingMu, so once this
	// lock is taken no new validation can join the wait group.
	s.validatingMu.Lock()
	s.validatingMu.Unlock()
	s.wg.Wait()
}

// housekeeping prunes expired nonces and idle rate-limit buckets.
func (s *Server) housekeeping() {
	defer s.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.nonces.prune()
			s.limits.prune(time.Now())
		}
	}
}

// routePrefix is the path of a chain's ACME root.
const routePrefix = "/{org}/{realm}/x509/{chain}/acme"

// Register adds the server's routes to mux with Go 1.22 patterns under
// /{org}/{realm}/x509/{chain}/acme/.
func (s *Server) Register(mux *http.ServeMux) {
	routes := []struct {
		pattern string
		h       handlerFunc
	}{
		{"GET /directory", s.handleDirectory},
		{"GET /new-nonce", s.handleNewNonce},
		{"POST /new-account", s.handleNewAccount},
		{"POST /account/{id}", s.handleAccount},
		{"POST /account/{id}/orders", s.handleAccountOrders},
		{"POST /key-change", s.handleKeyChange},
		{"POST /new-order", s.handleNewOrder},
		{"POST /order/{id}", s.handleOrder},
		{"POST /order/{id}/finalize", s.handleFinalize},
		{"POST /authz/{id}", s.handleAuthz},
		{"POST /chall/{id}", s.handleChallenge},
		{"POST /cert/{id}", s.handleCertificate},
		{"POST /revoke-cert", s.handleRevoke},
		{"GET /renewal-info/{id}", s.handleRenewalInfo},
		{"/{rest...}", s.handleUnknown},
	}
	for _, r := range routes {
		method, path, found := strings.Cut(r.pattern, " ")
		if found {
			mux.Handle(method+" "+routePrefix+path, s.wrap(r.h))
		} else {
			mux.Handle(routePrefix+r.pattern, s.wrap(r.h))
		}
	}
}
