package acme

import (
	"context"
	"time"

	"anchor/fsm"
)

// resultTimeout bounds recording one validation result in the log.
const resultTimeout = 30 * time.Second

// startValidation validates a processing challenge in the background unless
// this node already does. The validation runs only while this node is the
// challenge's validating node.
func (s *Server) startValidation(id string) {
	s.validatingMu.Lock()
	defer s.validatingMu.Unlock()
	if _, running := s.validating[id]; running || s.ctx.Err() != nil {
		return
	}
	retry := make(chan struct{}, 1)
	s.validating[id] = retry
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.validatingMu.Lock()
			delete(s.validating, id)
			s.validatingMu.Unlock()
		}()
		s.runValidation(id, retry)
	}()
}

// retryNow makes this node's validation of a challenge start its next
// attempt without waiting out the retry delay. It reports whether this node
// validates the challenge.
func (s *Server) retryNow(id string) bool {
	s.validatingMu.Lock()
	defer s.validatingMu.Unlock()
	retry, ok := s.validating[id]
	if ok {
		select {
		case retry <- struct{}{}:
		default:
		}
	}
	return ok
}

func (s *Server) isValidating(id string) bool {
	s.validatingMu.Lock()
	defer s.validatingMu.Unlock()
	_, ok := s.validating[id]
	return ok
}

// runValidation makes up to ValidationAttempts attempts, counting those the
// challenge records from earlier validating nodes, and commits the result.
// Each failed attempt that is retried is committed with its problem, so
// every node returns it to a polling client (RFC 8555, 8.2). The loop ends early when
// another node claims the challenge or the server closes.
func (s *Server) runValidation(id string, retry <-chan struct{}) {
	ch, authz, err := s.loadChallenge(id)
	if err != nil {
		s.logger.Error("acme challenge not loaded for validation", "challenge", id, "error", err)
		return
	}
	for ch.Status == fsm.ACMEStatusProcessing && ch.ValidatingNode == s.opts.NodeID {
		prob := s.attempt(ch, authz)
		if s.ctx.Err() != nil {
			return
		}
		if prob == nil || !retryable(prob) || ch.FailedAttempts+1 >= s.opts.ValidationAttempts {
			s.recordResult(ch, authz, prob)
			return
		}
		if ch = s.recordRetry(ch, authz, prob); ch == nil {
			return
		}
		if !s.waitRetry(ch.RetryAt, retry) {
			return
		}
	}
}

func (s *Server) loadChallenge(id string) (*fsm.ACMEChallenge, *fsm.ACMEAuthorization, error) {
	var ch *fsm.ACMEChallenge
	var authz *fsm.ACMEAuthorization
	err := s.state.View(func(tx *fsm.Tx) error {
		var err error
		ch, authz, err = tx.ACMEChallenge(id)
		return err
	})
	return ch, authz, err
}

// attempt validates the challenge once with the account's current key.
func (s *Server) attempt(ch *fsm.ACMEChallenge, authz *fsm.ACMEAuthorization) *problem {
	acct, err := s.account(authz.AccountID)
	if err != nil {
		return internalProblem("load account %s: %v", authz.AccountID, err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.ValidationTimeout)
	defer cancel()
	keyAuth := ch.Token + "." + acct.Thumbprint
	return s.validator.validate(ctx, ch.Type, authz.Identifier, ch.Token, keyAuth)
}

// retryable reports whether another attempt could pass where prob failed.
// Missing or wrong responses are retried, since the client may still be
// provisioning them.
func retryable(prob *problem) bool {
	switch prob.Type {
	case probMalformed, probServerInternal, probRejectedIdentifier, probUnsupportedIdentifier:
		return false
	}
	return true
}

// waitRetry waits until at, a retry request or Close. It reports whether to
// make the next attempt.
func (s *Server) waitRetry(at time.Time, retry <-chan struct{}) bool {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
	case <-retry:
	case <-s.ctx.Done():
		return false
	}
	return true
}

// recordRetry commits a failed attempt and the time of the next one. It
// returns the updated challenge, or nil when the validation must stop
// because the challenge was settled or claimed by another node, or the
// commit failed.
func (s *Server) recordRetry(ch *fsm.ACMEChallenge, authz *fsm.ACMEAuthorization,
	prob *problem) *fsm.ACMEChallenge {
	retryAt := time.Now().Add(s.opts.ValidationRetryDelay)
	ctx, cancel := context.WithTimeout(s.ctx, resultTimeout)
	defer cancel()
	var next fsm.ACMEChallenge
	err := s.propose(ctx, fsm.CmdACMERetryChallenge, fsm.RetryACMEChallenge{
		ID: ch.ID, Node: s.opts.NodeID,
		Error:   &fsm.ACMEProblem{Type: prob.Type, Detail: prob.Detail},
		RetryAt: retryAt, Deadline: s.validationDeadline(retryAt),
	}, &next)
	if fsm.CodeOf(err) == fsm.CodeFailedPrecondition {
		s.logger.Info("acme challenge validation stopped", "challenge", ch.ID,
			"authz", authz.ID, "reason", err)
		return nil
	}
	if err != nil {
		s.logger.Warn("acme challenge retry not recorded", "challenge", ch.ID,
			"authz", authz.ID, "error", err)
		return nil
	}
	s.logger.Info("acme challenge attempt failed, retrying", "challenge", ch.ID,
		"type", ch.Type, "identifier", authz.Identifier.Value, "failed_attempts",
		next.FailedAttempts, "problem", prob.Type, "detail", prob.Detail,
		"retry_at", retryAt.UTC().Format(time.RFC3339))
	return &next
}

// recordResult commits the validation result: valid without a problem,
// invalid with one.
func (s *Server) recordResult(ch *fsm.ACMEChallenge, authz *fsm.ACMEAuthorization,
	prob *problem) {
	update := fsm.UpdateACMEChallenge{
		ID: ch.ID, Status: fsm.ACMEStatusValid, Node: s.opts.NodeID,
	}
	if prob != nil {
		update.Status = fsm.ACMEStatusInvalid
		update.Error = &fsm.ACMEProblem{Type: prob.Type, Detail: prob.Detail}
	}
	ctx, cancel := context.WithTimeout(s.ctx, resultTimeout)
	defer cancel()
	err := s.propose(ctx, fsm.CmdACMEUpdateChallenge, update, nil)
	if fsm.CodeOf(err) == fsm.CodeFailedPrecondition {
		// Another node's validation, or the authorization's expiry, settled
		// the challenge first, or another node claimed it.
		s.logger.Info("acme challenge result not needed", "challenge", ch.ID,
			"authz", authz.ID, "status", update.Status, "reason", err)
		return
	}
	if err != nil {
		s.logger.Warn("acme challenge result not recorded", "challenge", ch.ID,
			"authz", authz.ID, "status", update.Status, "error", err)
		return
	}
	if prob != nil {
		s.logger.Info("acme challenge failed", "challenge", ch.ID, "type", ch.Type,
			"identifier", authz.Identifier.Value, "problem", prob.Type, "detail", prob.Detail)
		return
	}
	s.logger.Info("acme challenge valid", "challenge", ch.ID, "type", ch.Type,
		"identifier", authz.Identifier.Value)
}
