package acme

import (
	"time"

	"anchor/fsm"
)

// maxTakeoversPerRound bounds the challenges the leader claims in one round,
// so a backlog is worked off over several rounds instead of in one burst.
const maxTakeoversPerRound = 100

// takeOverStalledValidations runs while the server is open. On the leader
// it periodically claims the processing challenges whose validating node
// missed its deadline, such as a node that stopped during an attempt, and
// validates them here.
func (s *Server) takeOverStalledValidations() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.TakeoverInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if s.opts.IsLeader() {
				s.takeOverRound(time.Now())
			}
		}
	}
}

// takeOverRound claims the validations that were stalled at now. The claim
// command checks the deadline again in log order, so a result committed in
// the meantime wins over the claim.
func (s *Server) takeOverRound(now time.Time) {
	var ids []string
	if err := s.state.View(func(tx *fsm.Tx) error {
		ids = tx.ACMEStalledValidations(now, maxTakeoversPerRound)
		return nil
	}); err != nil {
		s.logger.Warn("acme stalled validations not read", "error", err)
		return
	}
	for _, id := range ids {
		if s.ctx.Err() != nil {
			return
		}
		if s.isValidating(id) {
			continue
		}
		res, err := s.claim(s.ctx, id, false)
		if err != nil {
			s.logger.Warn("acme validation takeover failed", "challenge", id, "error", err)
			continue
		}
		if !res.Claimed {
			s.logger.Debug("acme validation not taken over", "challenge", id,
				"reason", res.Reason)
			continue
		}
		s.logger.Info("acme validation taken over", "challenge", id,
			"previous_node", res.PreviousNode, "failed_attempts", res.Challenge.FailedAttempts)
		s.startValidation(id)
	}
}
