package crl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"anchor/fsm"
	"anchor/internal/logrepeat"
)

// Defaults of PublisherOptions.
const (
	DefaultValidity              = 24 * time.Hour
	DefaultDebounce              = 500 * time.Millisecond
	DefaultInterval              = 30 * time.Second
	DefaultFullRebuildMaxEntries = 10_000
)

// PublisherOptions configures a Publisher.
type PublisherOptions struct {
	// IsLeader reports whether this node is the Raft leader. It is required.
	// The Publisher signs and commits CRLs only while it returns true.
	IsLeader func() bool
	// Validity is the time from thisUpdate to nextUpdate of complete and
	// delta CRLs. Zero means DefaultValidity (24 hours).
	Validity time.Duration
	// RefreshBefore is how long before nextUpdate a CRL is signed again when
	// no revocation changed it, and how long before its nextUpdate the base
	// of the delta CRLs moves to the current complete CRL. Zero means half
	// of Validity. It must be shorter than Validity.
	RefreshBefore time.Duration
	// Debounce is the delay between an applied batch and the check of the
	// CRLs against the revocations, so that a burst of revocations yields
	// one CRL per changed scope. Later batches within the delay do not
	// extend it. Zero means DefaultDebounce (500 ms).
	Debounce time.Duration
	// Interval is how often the Publisher checks without an applied batch,
	// which notices a gained leadership and CRLs whose nextUpdate nears. Zero
	// means DefaultInterval (30 seconds).
	Interval time.Duration
	// FullRebuildMaxEntries limits the full CRL of a SubCA that is signed
	// again after each change: above it, the full CRL is signed again only
	// RefreshBefore its nextUpdate, and its delta CRL lists the revocations
	// in between. Shard CRLs and root CRLs are always signed again after a
	// change. Zero means DefaultFullRebuildMaxEntries (10,000).
	FullRebuildMaxEntries int
}

// Validate reports the first invalid field. Zero values are valid and
// select the defaults.
func (o PublisherOptions) Validate() error {
	switch {
	case o.IsLeader == nil:
		return errors.New("crl: PublisherOptions.IsLeader is nil")
	case o.Validity < 0, o.RefreshBefore < 0, o.Debounce < 0, o.Interval < 0:
		return errors.New("crl: PublisherOptions durations must not be negative")
	case o.FullRebuildMaxEntries < 0:
		return fmt.Errorf("crl: PublisherOptions.FullRebuildMaxEntries %d is negative",
			o.FullRebuildMaxEntries)
	}
	o = o.withDefaults()
	if o.RefreshBefore >= o.Validity {
		return fmt.Errorf("crl: PublisherOptions.RefreshBefore %s must be shorter than Validity %s",
			o.RefreshBefore, o.Validity)
	}
	return nil
}

func (o PublisherOptions) withDefaults() PublisherOptions {
	if o.Validity == 0 {
		o.Validity = DefaultValidity
	}
	if o.RefreshBefore == 0 {
		o.RefreshBefore = o.Validity / 2
	}
	if o.Debounce == 0 {
		o.Debounce = DefaultDebounce
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.FullRebuildMaxEntries == 0 {
		o.FullRebuildMaxEntries = DefaultFullRebuildMaxEntries
	}
	return o
}

// errNumberTaken reports that another publisher committed the CRL number
// first, such as a former leader that had not yet stepped down.
var errNumberTaken = errors.New("CRL number already taken")

// Publisher keeps the complete and delta CRLs of every scope current while
// this node leads the cluster. Its state belongs to the Run goroutine.
type Publisher struct {
	st      *fsm.FSM
	apply   Applier
	signers Signers
	logger  *slog.Logger
	opts    PublisherOptions
	now     func() time.Time
	// repeats keeps the failure to find a CA key, which recurs at every
	// check until the key arrives, to one warning per scope per minute.
	repeats *logrepeat.Filter
}

// NewPublisher returns a Publisher that reads st, signs with signers and
// commits through apply. It panics when opts.Validate fails: call Validate
// first when the options come from configuration.
func NewPublisher(
	st *fsm.FSM,
	apply Applier,
	signers Signers,
	logger *slog.Logger,
	opts PublisherOptions,
) *Publisher {
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	return &Publisher{
		st: st, apply: apply, signers: signers, logger: logger, opts: opts.withDefaults(),
		repeats: logrepeat.New(time.Minute, nil),
		now:     time.Now,
	}
}

// Run publishes CRLs until ctx ends, then returns nil. It checks at start,
// Debounce after each applied batch and every Interval. Call it once.
func (p *Publisher) Run(ctx context.Context) error {
	p.logger.Info("crl publisher started", "validity", p.opts.Validity,
		"refresh_before", p.opts.RefreshBefore)
	defer p.logger.Info("crl publisher stopped")

	ticker := time.NewTicker(p.opts.Interval)
	defer ticker.Stop()
	watch := p.st.Watch()
	var debounce <-chan time.Time
	p.check(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-watch:
			watch = p.st.Watch()
			if debounce == nil {
				debounce = time.After(p.opts.Debounce)
			}
		case <-debounce:
			debounce = nil
			p.check(ctx)
		case <-ticker.C:
			p.check(ctx)
		}
	}
}

// caScopes is a CA with the scopes of its CRLs.
type caScopes struct {
	ca     fsm.CA
	shards int // 0 for a root
}

// check publishes the CRLs of every scope that is due. Reading the stored
// records and change marks is cheap, so every scope is checked each time.
func (p *Publisher) check(ctx context.Context) {
	if !p.opts.IsLeader() {
		return
	}
	cas, err := p.listCAs()
	if err != nil {
		p.logger.Error("crl check failed", "error", err)
		return
	}
	for i := range cas {
		scopes := []fsm.CRLScope{fsm.FullScope(cas[i].ca.ID)}
		for shard := range cas[i].shards {
			scopes = append(scopes, fsm.ShardScope(cas[i].ca.ID, shard))
		}
		for _, scope := range scopes {
			if ctx.Err() != nil {
				return
			}
			err := p.publishScope(ctx, &cas[i], scope)
			switch {
			case errors.Is(err, errNumberTaken):
				p.logger.Info("crl number taken by another publisher, retrying at the next check",
					"scope", scope.String(), "error", err)
			case errors.Is(err, errKeyUnavailable):
				p.repeats.Warn(p.logger, scope.String(), "crl publication failed",
					"scope", scope.String(), "error", err)
			case err != nil:
				p.logger.Warn("crl publication failed", "scope", scope.String(), "error", err)
			}
		}
	}
}

func (p *Publisher) listCAs() ([]caScopes, error) {
	var out []caScopes
	err := p.st.View(func(tx *fsm.Tx) error {
		cas, err := tx.CAs()
		if err != nil {
			return err
		}
		for _, ca := range cas {
			entry := caScopes{ca: ca}
			if ca.Kind == fsm.CAKindSub {
				if entry.shards, err = tx.CRLShards(ca.ID); err != nil {
					return err
				}
			}
			out = append(out, entry)
		}
		return nil
	})
	return out, err
}
