package acme

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"anchor/fsm"
)

// handleChallenge returns a challenge (POST-as-GET) or, for any JSON object
// payload, starts its validation (RFC 8555, 7.5.1). Validation runs in the
// background while the client polls the challenge or its authorization. A
// payload for a processing challenge is a retry request, which this node
// starts at once (RFC 8555, 8.2).
func (s *Server) handleChallenge(w http.ResponseWriter, r *http.Request, c *call) error {
	sr, err := s.readSigned(w, r, c, byKID)
	if err != nil {
		return err
	}
	ch, authz, err := s.ownChallenge(sr.account, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Add("Link", link(c.url("authz", authz.ID), "up"))

	if !sr.postAsGet() {
		var obj map[string]json.RawMessage
		if err := sr.decode(&obj); err != nil {
			return err
		}
		if authzStatus(authz, time.Now()) == fsm.ACMEStatusPending &&
			(ch.Status == fsm.ACMEStatusPending || ch.Status == fsm.ACMEStatusProcessing) {
			if ch, err = s.requestValidation(r.Context(), ch); err != nil {
				return err
			}
		}
	}
	if ch.Status == fsm.ACMEStatusProcessing {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(ch, time.Now())))
	}
	writeJSON(w, http.StatusOK, c.challengeJSON(ch))
	return nil
}

// ownChallenge returns a challenge of acct with its authorization.
func (s *Server) ownChallenge(acct *fsm.ACMEAccount, id string) (
	*fsm.ACMEChallenge, *fsm.ACMEAuthorization, error) {
	var ch *fsm.ACMEChallenge
	var a *fsm.ACMEAuthorization
	err := s.state.View(func(tx *fsm.Tx) error {
		var err error
		ch, a, err = tx.ACMEChallenge(id)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if a.AccountID != acct.ID {
		return nil, nil, unauthorized("challenge %q belongs to another account", id)
	}
	return ch, a, nil
}

// requestValidation starts the validation of a pending challenge on this
// node, or moves the validation of a processing challenge here and retries
// at once. It returns the challenge as this node's state then shows it.
func (s *Server) requestValidation(ctx context.Context, ch *fsm.ACMEChallenge) (
	*fsm.ACMEChallenge, error) {
	if ch.Status == fsm.ACMEStatusPending {
		next, err := s.markProcessing(ctx, ch.ID)
		if err != nil {
			return nil, err
		}
		if next.Status != fsm.ACMEStatusProcessing {
			return next, nil
		}
		if next.ValidatingNode == s.opts.NodeID {
			s.startValidation(next.ID)
			return next, nil
		}
		// Another node had moved the challenge to processing before this
		// node applied that change. The client sent its request here, so this
		// node claims the validation.
		ch = next
	}
	if s.retryNow(ch.ID) {
		return ch, nil
	}
	res, err := s.claim(ctx, ch.ID, true)
	if err != nil {
		return nil, err
	}
	if res.Claimed {
		s.startValidation(ch.ID)
	}
	return &res.Challenge, nil
}

// markProcessing moves a pending challenge to processing with this node as
// its validating node. A concurrent request that already did so is not an
// error; the challenge then shows the other node.
func (s *Server) markProcessing(ctx context.Context, id string) (*fsm.ACMEChallenge, error) {
	err := s.propose(ctx, fsm.CmdACMEUpdateChallenge, fsm.UpdateACMEChallenge{
		ID: id, Status: fsm.ACMEStatusProcessing,
		Node: s.opts.NodeID, Deadline: s.validationDeadline(time.Now()),
	}, nil)
	if err != nil && fsm.CodeOf(err) != fsm.CodeFailedPrecondition {
		return nil, err
	}
	var ch *fsm.ACMEChallenge
	err = s.awaitLocal(ctx, func(tx *fsm.Tx) bool {
		got, _, err := tx.ACMEChallenge(id)
		ch = got
		return err == nil && got.Status != fsm.ACMEStatusPending
	})
	return ch, err
}

// claim makes this node the validating node of a processing challenge.
// With force it claims at once, for a client's retry request. Without force
// it claims only when the validating node missed its deadline. After a
// successful claim it waits until this node's state shows the claim.
func (s *Server) claim(ctx context.Context, id string, force bool) (
	*fsm.ACMEChallengeClaim, error) {
	var res fsm.ACMEChallengeClaim
	err := s.propose(ctx, fsm.CmdACMEClaimChallenge, fsm.ClaimACMEChallenge{
		ID: id, Node: s.opts.NodeID, Deadline: s.validationDeadline(time.Now()), Force: force,
	}, &res)
	if err != nil || !res.Claimed {
		return &res, err
	}
	err = s.awaitLocal(ctx, func(tx *fsm.Tx) bool {
		got, _, err := tx.ACMEChallenge(id)
		return err == nil && (got.Status != fsm.ACMEStatusProcessing ||
			got.ValidationDeadline.Equal(res.Challenge.ValidationDeadline))
	})
	return &res, err
}

// validationDeadline is the latest time by which this node commits the
// result of an attempt that starts at start. Past it, the leader may take
// the validation over.
func (s *Server) validationDeadline(start time.Time) time.Time {
	return start.Add(s.opts.ValidationTimeout + s.opts.TakeoverGrace)
}

// retryAfterSeconds is the Retry-After of a processing challenge: a second
// after its next attempt starts, or one second while an attempt runs (RFC
// 8555, 8.2).
func retryAfterSeconds(ch *fsm.ACMEChallenge, now time.Time) int {
	if wait := ch.RetryAt.Sub(now); wait > 0 {
		return int(wait/time.Second) + 1
	}
	return 1
}
