package crl

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"time"

	"anchor/fsm"
)

// scopePlan is the publication plan of one check for a scope, read in one
// transaction so that both CRLs list the same state.
type scopePlan struct {
	scope   fsm.CRLScope
	applied uint64
	// complete and delta are the stored records, nil when absent.
	complete, delta *fsm.CRL
	// completeReason and deltaReason give why a CRL is due, empty when not.
	completeReason, deltaReason string
	// base is the delta's base, nil when it is the complete CRL about to be
	// published.
	base                          *fsm.CRLBase
	completeEntries, deltaEntries []x509.RevocationListEntry
}

// publishScope signs and commits the complete CRL of a scope when it is
// missing, due for refresh, or behind the revocations, and then the delta
// CRL, which must carry a higher number than the complete CRL it follows.
func (p *Publisher) publishScope(ctx context.Context, cs *caScopes, scope fsm.CRLScope) error {
	now := p.now().UTC().Truncate(time.Second)
	var plan *scopePlan
	err := p.st.View(func(tx *fsm.Tx) error {
		var err error
		plan, err = p.plan(tx, cs, scope, now)
		return err
	})
	if err != nil || plan == nil {
		return err
	}
	signer, err := caSigner(p.signers, &cs.ca)
	if err != nil {
		return err
	}

	complete := plan.complete
	if plan.completeReason != "" {
		complete, err = p.commit(ctx, &crlTemplate{
			ca: &cs.ca, scope: scope, number: nextNumber(plan.complete, plan.delta),
			sourceIndex: plan.applied, thisUpdate: now, nextUpdate: now.Add(p.opts.Validity),
			entries: plan.completeEntries,
		}, signer, plan.completeReason)
		if err != nil {
			return err
		}
	}
	base := plan.base
	if base == nil {
		base = fsm.BaseOf(complete)
	}
	_, err = p.commit(ctx, &crlTemplate{
		ca: &cs.ca, scope: scope, base: base, number: nextNumber(complete, plan.delta),
		sourceIndex: plan.applied, thisUpdate: now, nextUpdate: now.Add(p.opts.Validity),
		entries: plan.deltaEntries,
	}, signer, plan.deltaReason)
	return err
}

// plan decides what is due for a scope and reads the entries it needs. It
// returns nil when nothing is due.
func (p *Publisher) plan(
	tx *fsm.Tx,
	cs *caScopes,
	scope fsm.CRLScope,
	now time.Time,
) (*scopePlan, error) {
	plan := &scopePlan{scope: scope, applied: tx.AppliedIndex()}
	var err error
	if plan.complete, err = storedInfo(tx, scope, false); err != nil {
		return nil, err
	}
	if plan.delta, err = storedInfo(tx, scope, true); err != nil {
		return nil, err
	}
	last := tx.LastRevocationIndex(scope, cs.shards)
	plan.completeReason = p.completeReason(tx, cs, plan.complete, last, now)
	plan.deltaReason = p.deltaReason(plan, last, now)
	if plan.deltaReason == "" {
		return nil, nil
	}

	since := plan.applied
	switch {
	case plan.delta != nil && plan.delta.Base != nil && p.fresh(plan.delta.Base.NextUpdate, now):
		plan.base = plan.delta.Base
		since = plan.base.SourceIndex
	case plan.completeReason == "":
		plan.base = fsm.BaseOf(plan.complete)
		since = plan.base.SourceIndex
	}
	if plan.deltaEntries, err = deltaEntries(tx, scope, cs.shards, since); err != nil {
		return nil, err
	}
	if plan.completeReason != "" {
		revs, err := readRevocations(tx, scope, cs.shards)
		if err != nil {
			return nil, err
		}
		plan.completeEntries = entriesSince(withoutExpired(revs, plan.complete), 0)
	}
	return plan, nil
}

func (p *Publisher) completeReason(
	tx *fsm.Tx,
	cs *caScopes,
	complete *fsm.CRL,
	lastRevocation uint64,
	now time.Time,
) string {
	switch {
	case complete == nil:
		return "first"
	case !p.fresh(complete.NextUpdate, now):
		return "refresh"
	case lastRevocation <= complete.SourceIndex:
		return ""
	case complete.Sharded || cs.ca.Kind == fsm.CAKindRoot,
		tx.RevocationCount(cs.ca.ID) <= uint64(p.opts.FullRebuildMaxEntries):
		return "revocations changed"
	}
	return ""
}

// deltaReason returns why the delta CRL is due. Publishing a complete CRL
// always makes it due, because OpenSSL combines a delta only with a
// complete CRL of a lower number.
func (p *Publisher) deltaReason(plan *scopePlan, lastRevocation uint64, now time.Time) string {
	switch {
	case plan.completeReason != "":
		return "complete CRL " + plan.completeReason
	case plan.delta == nil:
		return "first"
	case plan.delta.Number < plan.complete.Number:
		return "behind the complete CRL"
	case !p.fresh(plan.delta.NextUpdate, now):
		return "refresh"
	case lastRevocation > plan.delta.SourceIndex:
		return "revocations changed"
	}
	return ""
}

// fresh reports whether a CRL with nextUpdate needs no refresh at now.
func (p *Publisher) fresh(nextUpdate, now time.Time) bool {
	return now.Before(nextUpdate.Add(-p.opts.RefreshBefore))
}

func storedInfo(tx *fsm.Tx, scope fsm.CRLScope, delta bool) (*fsm.CRL, error) {
	c, err := tx.CRLInfo(scope, delta)
	if fsm.IsNotFound(err) {
		return nil, nil
	}
	return c, err
}

// deltaEntries lists the revocations of a scope applied after log index
// since, from the index that is ordered by log index.
func deltaEntries(
	tx *fsm.Tx,
	scope fsm.CRLScope,
	shards int,
	since uint64,
) ([]x509.RevocationListEntry, error) {
	var revs []fsm.Revocation
	err := tx.RevocationsSince(scope.CAID, since, func(r *fsm.Revocation) bool {
		if !scope.Sharded || fsm.ShardOf(r.Serial, shards) == scope.Shard {
			revs = append(revs, *r)
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("list revocations of %s since %d: %w", scope, since, err)
	}
	return entriesSince(revs, since), nil
}

// commit signs the CRL that tmpl describes and commits it.
func (p *Publisher) commit(
	ctx context.Context,
	tmpl *crlTemplate,
	signer crypto.Signer,
	reason string,
) (*fsm.CRL, error) {
	crl, err := signCRL(tmpl, signer)
	if err != nil {
		return nil, err
	}
	cmd, err := fsm.NewCommand(fsm.CmdPublishCRL, crl)
	if err != nil {
		return nil, err
	}
	res, err := p.apply.Apply(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("commit CRL %d of %s: %w", crl.Number, tmpl.scope, err)
	}
	if res.Err != nil {
		if res.Err.Code == fsm.CodeFailedPrecondition {
			return nil, fmt.Errorf("%w: %w", errNumberTaken, res.Err)
		}
		return nil, fmt.Errorf("commit CRL %d of %s: %w", crl.Number, tmpl.scope, res.Err)
	}
	p.logger.Info("crl published", "scope", tmpl.scope.String(), "delta", crl.Delta,
		"number", crl.Number, "entries", crl.Entries, "reason", reason,
		"next_update", crl.NextUpdate)
	return crl, nil
}

// nextNumber returns the cRLNumber that follows both stored CRLs of a
// scope, which share one sequence.
func nextNumber(complete, delta *fsm.CRL) uint64 {
	var n uint64
	for _, c := range []*fsm.CRL{complete, delta} {
		if c != nil {
			n = max(n, c.Number)
		}
	}
	return n + 1
}
