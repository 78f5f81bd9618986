package fsm

import (
	"testing"
	"time"
)

func (s *acmeState) challenge(id string) *ACMEChallenge {
	s.t.Helper()
	var ch *ACMEChallenge
	if err := s.fsm.View(func(tx *Tx) error {
		var err error
		ch, _, err = tx.ACMEChallenge(id)
		return err
	}); err != nil {
		s.t.Fatal(err)
	}
	return ch
}

func (s *acmeState) stalled(now time.Time) []string {
	s.t.Helper()
	var ids []string
	if err := s.fsm.View(func(tx *Tx) error {
		ids = tx.ACMEStalledValidations(now, 10)
		return nil
	}); err != nil {
		s.t.Fatal(err)
	}
	return ids
}

// startValidation creates order id with a pending challenge and moves the
// challenge to processing on node "a" with the given deadline.
func (s *acmeState) startValidation(id string, deadline time.Time) string {
	s.t.Helper()
	s.createOrder(id, ACMEStatusPending)
	chID := id + "-ch"
	s.must(CmdACMEUpdateChallenge, UpdateACMEChallenge{
		ID: chID, Status: ACMEStatusProcessing, Node: "a", Deadline: deadline,
	})
	return chID
}

func TestChallengeUpdate_ProcessingRecordsNode(t *testing.T) {
	s := newACMEState(t)
	deadline := time.Now().Add(time.Minute).UTC()
	ch := s.challenge(s.startValidation("o1", deadline))
	if ch.ValidatingNode != "a" || !ch.ValidationDeadline.Equal(deadline) ||
		ch.ValidationStarted.IsZero() {
		t.Errorf("challenge node %q, deadline %s, started %s: want a, %s and a start time",
			ch.ValidatingNode, ch.ValidationDeadline, ch.ValidationStarted, deadline)
	}
}

func TestChallengeRetry_KeepsProcessingWithError(t *testing.T) {
	s := newACMEState(t)
	chID := s.startValidation("o1", time.Now().Add(time.Minute))
	retryAt := time.Now().Add(5 * time.Second).UTC()
	s.must(CmdACMERetryChallenge, RetryACMEChallenge{
		ID: chID, Node: "a", Error: &ACMEProblem{Type: "connection", Detail: "refused"},
		RetryAt: retryAt, Deadline: retryAt.Add(time.Minute),
	})
	ch := s.challenge(chID)
	if ch.Status != ACMEStatusProcessing {
		t.Errorf("status = %s, want processing", ch.Status)
	}
	if ch.Error == nil || ch.Error.Type != "connection" {
		t.Errorf("error = %+v, want the attempt's problem", ch.Error)
	}
	if ch.FailedAttempts != 1 || !ch.RetryAt.Equal(retryAt) {
		t.Errorf("failed attempts %d, retry at %s: want 1 and %s", ch.FailedAttempts,
			ch.RetryAt, retryAt)
	}
	if got := s.order("o1").Status; got != ACMEStatusPending {
		t.Errorf("order status = %s, want pending", got)
	}
}

func TestChallengeRetry_OtherNodeRejected(t *testing.T) {
	s := newACMEState(t)
	chID := s.startValidation("o1", time.Now().Add(time.Minute))
	err := s.apply(CmdACMERetryChallenge, RetryACMEChallenge{
		ID: chID, Node: "b", Error: &ACMEProblem{Type: "dns"},
		RetryAt: time.Now(), Deadline: time.Now().Add(time.Minute),
	})
	if CodeOf(err) != CodeFailedPrecondition {
		t.Errorf("retry by another node: %v, want failed precondition", err)
	}
}

func TestChallengeClaim_WaitsForDeadline(t *testing.T) {
	s := newACMEState(t)
	now := time.Now()
	chID := s.startValidation("o1", now.Add(time.Minute))
	claim := ClaimACMEChallenge{ID: chID, Node: "b", Deadline: now.Add(3 * time.Minute)}
	if err := s.applyAt(CmdACMEClaimChallenge, claim, now); err != nil {
		t.Fatalf("early claim: %v", err)
	}
	if got := s.challenge(chID).ValidatingNode; got != "a" {
		t.Fatalf("validating node after an early claim = %q, want a", got)
	}

	if err := s.applyAt(CmdACMEClaimChallenge, claim, now.Add(2*time.Minute)); err != nil {
		t.Fatalf("claim after the deadline: %v", err)
	}
	if got := s.challenge(chID).ValidatingNode; got != "b" {
		t.Fatalf("validating node after the deadline = %q, want b", got)
	}
	invalid := UpdateACMEChallenge{ID: chID, Status: ACMEStatusInvalid, Node: "a"}
	if err := s.apply(CmdACMEUpdateChallenge, invalid); CodeOf(err) != CodeFailedPrecondition {
		t.Errorf("invalid result from the previous node: %v, want failed precondition", err)
	}
	invalid.Node = "b"
	if err := s.apply(CmdACMEUpdateChallenge, invalid); err != nil {
		t.Errorf("invalid result from the claiming node: %v", err)
	}
}

func TestChallengeClaim_ForceClaimsAtOnce(t *testing.T) {
	s := newACMEState(t)
	chID := s.startValidation("o1", time.Now().Add(time.Minute))
	s.must(CmdACMEClaimChallenge, ClaimACMEChallenge{
		ID: chID, Node: "b", Deadline: time.Now().Add(time.Minute), Force: true,
	})
	if got := s.challenge(chID).ValidatingNode; got != "b" {
		t.Errorf("validating node = %q, want b", got)
	}
}

func TestChallengeUpdate_ValidFromAnyNode(t *testing.T) {
	s := newACMEState(t)
	chID := s.startValidation("o1", time.Now().Add(time.Minute))
	s.must(CmdACMERetryChallenge, RetryACMEChallenge{
		ID: chID, Node: "a", Error: &ACMEProblem{Type: "dns"},
		RetryAt: time.Now(), Deadline: time.Now().Add(time.Minute),
	})
	s.must(CmdACMEUpdateChallenge, UpdateACMEChallenge{
		ID: chID, Status: ACMEStatusValid, Node: "b",
	})
	ch := s.challenge(chID)
	if ch.Status != ACMEStatusValid || ch.Error != nil {
		t.Errorf("challenge %s with error %+v, want valid without error", ch.Status, ch.Error)
	}
}

func TestStalledValidations_Index(t *testing.T) {
	s := newACMEState(t)
	deadline := time.Now().Add(time.Minute)
	chID := s.startValidation("o1", deadline)
	if ids := s.stalled(deadline.Add(-time.Second)); len(ids) != 0 {
		t.Errorf("stalled before the deadline: %v, want none", ids)
	}
	if ids := s.stalled(deadline.Add(time.Second)); len(ids) != 1 || ids[0] != chID {
		t.Errorf("stalled after the deadline: %v, want [%s]", ids, chID)
	}
	s.must(CmdACMEUpdateChallenge, UpdateACMEChallenge{ID: chID, Status: ACMEStatusValid})
	if ids := s.stalled(deadline.Add(time.Second)); len(ids) != 0 {
		t.Errorf("stalled after the result: %v, want none", ids)
	}
}

func TestStalledValidations_DeactivationUnindexes(t *testing.T) {
	s := newACMEState(t)
	deadline := time.Now().Add(time.Minute)
	s.startValidation("o1", deadline)
	s.must(CmdACMEDeactivateAuthz, DeactivateACMEAuthz{ID: "o1-authz"})
	if ids := s.stalled(deadline.Add(time.Second)); len(ids) != 0 {
		t.Errorf("stalled after deactivation: %v, want none", ids)
	}
}

func TestChallengeClaim_ExpiredAuthzUnindexes(t *testing.T) {
	s := newACMEState(t)
	deadline := time.Now().Add(time.Minute)
	chID := s.startValidation("o1", deadline)
	// createOrder lets the authorization expire in an hour.
	late := time.Now().Add(2 * time.Hour)
	claim := ClaimACMEChallenge{ID: chID, Node: "b", Deadline: late.Add(time.Minute)}
	if err := s.applyAt(CmdACMEClaimChallenge, claim, late); err != nil {
		t.Fatalf("claim of an expired authorization's challenge: %v", err)
	}
	if got := s.challenge(chID).ValidatingNode; got != "a" {
		t.Errorf("validating node = %q, want a: an expired authorization is not claimed", got)
	}
	if ids := s.stalled(late); len(ids) != 0 {
		t.Errorf("stalled after the claim of an expired authorization: %v, want none", ids)
	}
}
