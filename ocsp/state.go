package ocsp

import (
	"fmt"

	"anchor/fsm"
)

// stateView is the data the Responder derived from one generation of the
// replicated state. A generation ends when the FSM applies a batch or
// restores a snapshot: both close the channel that fsm.FSM.Watch returned,
// and the next request then starts a new generation. A cached response
// whose status was read at the current generation is served without reading
// the state, because no command has been applied since.
type stateView struct {
	// changed is closed after the next applied batch or restore.
	changed <-chan struct{}
	gen     uint64
	issuers *issuerIndex
}

// stale reports whether the state has changed since v began.
func (v *stateView) stale() bool {
	select {
	case <-v.changed:
		return true
	default:
		return false
	}
}

// current returns the view of the current generation. Every batch whose
// notification happened before the call is visible to a transaction begun
// after it returns.
func (r *Responder) current() (*stateView, error) {
	if v := r.view.Load(); v != nil && !v.stale() {
		return v, nil
	}
	r.viewMu.Lock()
	defer r.viewMu.Unlock()
	old := r.view.Load()
	if old != nil && !old.stale() {
		return old, nil // another request began the generation
	}

	// Watch before reading, so that a batch applied during the read ends
	// the new generation.
	next := &stateView{changed: r.st.Watch(), gen: 1}
	if old != nil {
		next.gen, next.issuers = old.gen+1, old.issuers
	}
	err := r.st.View(func(tx *fsm.Tx) error {
		if next.issuers != nil && next.issuers.stateID == tx.StateID() {
			return nil
		}
		idx, err := buildIssuerIndex(tx, next.issuers)
		if err == nil {
			idx.countChecked.Store(next.gen)
		}
		next.issuers = idx
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read the CAs of the state: %w", err)
	}
	if old != nil && next.issuers != old.issuers {
		// Cached responses of CAs whose records changed are not served
		// again, because they belong to the old issuer values.
		r.logger.Info("ocsp issuer index rebuilt after a restore",
			"cas", next.issuers.caCount, "generation", next.gen)
	}
	r.view.Store(next)
	return next, nil
}

// findIssuer returns the CA that a request's CertID names. A key hash that
// the index lacks may belong to a CA added since the index was built, so
// the CAs are counted, once per generation, and the index rebuilt when
// their number grew.
func (r *Responder) findIssuer(v *stateView, req *request) (*issuer, error) {
	iss, err := v.issuers.find(req)
	if iss != nil || err != nil {
		return iss, err
	}
	idx, err := r.refreshIssuers(v)
	if err != nil {
		return nil, err
	}
	if iss, err = idx.find(req); iss == nil && err == nil {
		err = errUnauthorized
	}
	return iss, err
}

// refreshIssuers returns an index that holds every CA that the state held
// when generation v began. It rebuilds the index when the CA count grew.
func (r *Responder) refreshIssuers(v *stateView) (*issuerIndex, error) {
	if v.issuers.countChecked.Load() >= v.gen {
		return v.issuers, nil
	}
	r.viewMu.Lock()
	defer r.viewMu.Unlock()
	// Generations only advance, so cur is v or a later one.
	cur := r.view.Load()
	idx := cur.issuers
	if idx.countChecked.Load() >= cur.gen {
		return idx, nil
	}

	var rebuilt *issuerIndex
	sameState := true
	err := r.st.View(func(tx *fsm.Tx) error {
		if tx.StateID() != idx.stateID {
			// A restore ended cur, and the next generation's start
			// rebuilds the index.
			sameState = false
			return nil
		}
		if tx.CACount() == idx.caCount {
			return nil
		}
		var err error
		rebuilt, err = buildIssuerIndex(tx, idx)
		return err
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("read the CAs of the state: %w", err)
	case !sameState:
		return idx, nil
	case rebuilt == nil:
		idx.countChecked.Store(cur.gen)
		return idx, nil
	}

	rebuilt.countChecked.Store(cur.gen)
	r.view.Store(&stateView{changed: cur.changed, gen: cur.gen, issuers: rebuilt})
	r.logger.Info("ocsp issuer index rebuilt for new CAs",
		"cas", rebuilt.caCount, "generation", cur.gen)
	return rebuilt, nil
}
