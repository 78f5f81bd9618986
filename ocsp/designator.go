package ocsp

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"anchor/fsm"
	"anchor/hsm"
)

// Defaults of DesignatorOptions.
const (
	DefaultResponderValidity  = 4 * 24 * time.Hour
	DefaultResponderAlgorithm = hsm.ECDSAP256
	DefaultDesignatorInterval = time.Minute
	DefaultDesignatorDebounce = time.Second
)

// minResponderValidity keeps a responder certificate longer than the
// responses it signs (Options.Validity) and the time its key needs to reach
// every node.
const minResponderValidity = 2 * time.Hour

// KeyStore is the node's HSM as the Designator uses it. *hsm.HSM implements
// it.
type KeyStore interface {
	// GenerateKey creates a key pair in the HSM, named id, that leaves the
	// HSM only wrapped.
	GenerateKey(id string, alg hsm.Algorithm) (crypto.Signer, error)
	// Signer returns the signer of an existing key, such as a CA key.
	Signer(id string) (crypto.Signer, error)
}

// Applier commits commands to the replicated log. The cluster node satisfies
// it and forwards the command to the Raft leader.
type Applier interface {
	// Apply commits cmd and returns its result once the command is applied,
	// or an error when it could not be committed before ctx ends. A command
	// that the handler rejected is returned as a Result with Err set. The
	// Designator calls it from its Run goroutine.
	Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error)
}

// DesignatorOptions configures a Designator.
type DesignatorOptions struct {
	// IsLeader reports whether this node is the Raft leader. It is required.
	IsLeader func() bool
	// NodeID names this node as the origin of the keys it generates. It is
	// required.
	NodeID string
	// Validity is the lifetime of a responder certificate, at least two
	// hours. Zero means DefaultResponderValidity (4 days).
	Validity time.Duration
	// RenewBefore is how long before a responder certificate expires its
	// successor is issued. Zero means half of Validity. It must be shorter
	// than Validity. The Responder signs with a responder certificate only
	// when it covers the response's nextUpdate, so RenewBefore should
	// exceed Options.Validity plus the time key distribution takes.
	RenewBefore time.Duration
	// Algorithm is the responder key type. Zero means
	// DefaultResponderAlgorithm (ECDSA P-256).
	Algorithm hsm.Algorithm
	// Interval is how often the Designator checks without an applied batch.
	// Zero means DefaultDesignatorInterval (1 minute).
	Interval time.Duration
}

// Validate reports the first invalid field.
func (o DesignatorOptions) Validate() error {
	switch {
	case o.IsLeader == nil:
		return errors.New("ocsp: DesignatorOptions.IsLeader is nil")
	case o.NodeID == "":
		return errors.New("ocsp: DesignatorOptions.NodeID is empty")
	case o.Validity != 0 && o.Validity < minResponderValidity:
		return fmt.Errorf("ocsp: DesignatorOptions.Validity %s is shorter than %s",
			o.Validity, minResponderValidity)
	case o.RenewBefore < 0, o.Interval < 0:
		return errors.New("ocsp: DesignatorOptions durations must not be negative")
	}
	if o = o.withDefaults(); o.RenewBefore >= o.Validity {
		return fmt.Errorf("ocsp: DesignatorOptions.RenewBefore %s must be shorter than Validity %s",
			o.RenewBefore, o.Validity)
	}
	return nil
}

func (o DesignatorOptions) withDefaults() DesignatorOptions {
	if o.Validity == 0 {
		o.Validity = DefaultResponderValidity
	}
	if o.RenewBefore == 0 {
		o.RenewBefore = o.Validity / 2
	}
	if o.Algorithm == "" {
		o.Algorithm = DefaultResponderAlgorithm
	}
	if o.Interval == 0 {
		o.Interval = DefaultDesignatorInterval
	}
	return o
}

// Designator keeps a designated responder certificate (RFC 6960, 4.2.2.2)
// current for every SubCA that is not revoked, while this node leads the
// cluster. A SubCA needs one when it has none, or when its newest
// certificate expires within RenewBefore. The Designator then generates a
// key in this node's HSM and records it with fsm.CmdCreateKey, so that the
// ca.KeyManager of every node receives it like a CA key. It signs the
// certificate with the SubCA's key and commits it with
// fsm.CmdPublishOCSPResponder. A CA keeps its two newest responders, and
// the Designator retires the key of a dropped one once its certificate has
// expired and it is a day old (fsm.CmdRetireKey), so that every node
// destroys it.
type Designator struct {
	st     *fsm.FSM
	apply  Applier
	keys   KeyStore
	logger *slog.Logger
	opts   DesignatorOptions
	now    func() time.Time
}

// NewDesignator returns a Designator that reads st, uses the HSM keys and
// commits through apply. It panics when opts.Validate fails: call Validate
// first when the options come from configuration.
func NewDesignator(
	st *fsm.FSM,
	apply Applier,
	keys KeyStore,
	logger *slog.Logger,
	opts DesignatorOptions,
) *Designator {
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	return &Designator{
		st: st, apply: apply, keys: keys, logger: logger, opts: opts.withDefaults(), now: time.Now,
	}
}

// Run keeps responder certificates current until ctx ends, then returns
// nil. It checks at start, a second after applied batches, which notices new
// SubCAs, and every Interval. Call it once.
func (d *Designator) Run(ctx context.Context) error {
	d.logger.Info("ocsp designator started", "validity", d.opts.Validity,
		"renew_before", d.opts.RenewBefore)
	defer d.logger.Info("ocsp designator stopped")

	ticker := time.NewTicker(d.opts.Interval)
	defer ticker.Stop()
	watch := d.st.Watch()
	var debounce <-chan time.Time
	d.check(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-watch:
			watch = d.st.Watch()
			if debounce == nil {
				debounce = time.After(DefaultDesignatorDebounce)
			}
		case <-debounce:
			debounce = nil
			d.check(ctx)
		case <-ticker.C:
			d.check(ctx)
		}
	}
}

// check issues a responder certificate for every SubCA that needs one.
func (d *Designator) check(ctx context.Context) {
	if !d.opts.IsLeader() {
		return
	}
	due, err := d.dueCAs()
	if err != nil {
		d.logger.Error("ocsp designator check failed", "error", err)
		return
	}
	for i := range due {
		if ctx.Err() != nil {
			return
		}
		if err := d.designate(ctx, &due[i]); err != nil {
			d.logger.Warn("ocsp responder certificate not issued, retrying at the next check",
				"ca", due[i].ID, "error", err)
		}
	}
	d.retireUnused(ctx)
}

// retireUnused retires the responder keys that no CA's responder list
// names any more and whose certificate has expired: keys older than the
// responder validity and an hour, and at least fsm.RetireMinAge old. Every
// node's ca.KeyManager then destroys them in its HSM. A CA keeps its two
// newest responders, so a key leaves the list when the second successor of
// its certificate is published.
func (d *Designator) retireUnused(ctx context.Context) {
	minAge := max(fsm.RetireMinAge, d.opts.Validity+time.Hour)
	var ids []string
	err := d.st.View(func(tx *fsm.Tx) error {
		unused, err := tx.UnusedKeys()
		if err != nil {
			return err
		}
		for _, k := range unused {
			if strings.HasPrefix(k.ID, fsm.ResponderKeyPrefix) && d.now().Sub(k.CreatedAt) >= minAge {
				ids = append(ids, k.ID)
			}
		}
		return nil
	})
	if err != nil {
		d.logger.Error("ocsp designator: list unused responder keys", "error", err)
		return
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		cmd := fsm.MustCommand(fsm.CmdRetireKey, fsm.RetireKey{KeyID: id})
		if err := applyDecode(ctx, d.apply, cmd); err != nil {
			d.logger.Warn("ocsp responder key not retired, retrying at the next check", "key", id, "error", err)
			continue
		}
		d.logger.Info("ocsp responder key retired", "key", id)
	}
}

// dueCAs lists the SubCAs that need a new responder certificate.
func (d *Designator) dueCAs() ([]fsm.CA, error) {
	renewAt := d.now().Add(d.opts.RenewBefore)
	var due []fsm.CA
	err := d.st.View(func(tx *fsm.Tx) error {
		cas, err := tx.CAs()
		if err != nil {
			return err
		}
		for _, ca := range cas {
			if ca.Kind != fsm.CAKindSub {
				continue
			}
			if _, err := tx.CARevocation(ca.ID); !fsm.IsNotFound(err) {
				continue
			}
			responders, err := tx.OCSPResponders(ca.ID)
			if err != nil {
				return err
			}
			cert, err := ca.Certificate()
			if err != nil {
				return err
			}
			if responderDue(responders, cert, renewAt) {
				due = append(due, ca)
			}
		}
		return nil
	})
	return due, err
}

// responderDue reports whether a CA needs a new responder certificate: it
// has none, or the newest expires before renewAt and a successor could end
// later, which it cannot once the newest ends with the CA certificate.
func responderDue(
	responders []fsm.OCSPResponder,
	caCert *x509.Certificate,
	renewAt time.Time,
) bool {
	if len(responders) == 0 {
		return true
	}
	newest := responders[0].NotAfter
	return !newest.After(renewAt) && newest.Before(caCert.NotAfter.Truncate(time.Second))
}
