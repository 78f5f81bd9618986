package fsm

import "time"

// Command types of ACME authorizations and challenges.
const (
	CmdACMEDeactivateAuthz CommandType = "acme.authz.deactivate"
	CmdACMEUpdateChallenge CommandType = "acme.challenge.update"
)

// DeactivateACMEAuthz is the payload of CmdACMEDeactivateAuthz (RFC 8555,
// 7.5.2).
type DeactivateACMEAuthz struct {
	ID string `json:"id"`
}

// UpdateACMEChallenge is the payload of CmdACMEUpdateChallenge. The allowed
// transitions are pending to processing (the client asked for validation)
// and processing to valid or invalid (the validation result).
type UpdateACMEChallenge struct {
	ID     string       `json:"id"`
	Status string       `json:"status"`
	Error  *ACMEProblem `json:"error,omitempty"`
	// Node is the proposing node. Moving to processing makes it the
	// validating node. An invalid result from another node is rejected,
	// because the validation moved on to the validating node. A valid
	// result is accepted from any node.
	Node string `json:"node,omitempty"`
	// Deadline is, for the move to processing, the latest time by which Node
	// commits its next update. Without it, no node takes the validation over
	// when Node stops.
	Deadline time.Time `json:"deadline,omitzero"`
}

// ACMEChallengeUpdate is the result of CmdACMEUpdateChallenge.
type ACMEChallengeUpdate struct {
	Challenge     ACMEChallenge     `json:"challenge"`
	Authorization ACMEAuthorization `json:"authorization"`
}

func init() {
	register(CmdACMEDeactivateAuthz, applyDeactivateACMEAuthz)
	register(CmdACMEUpdateChallenge, applyUpdateACMEChallenge)
}

func applyDeactivateACMEAuthz(tx *Tx, cmd *Command) (any, error) {
	var p DeactivateACMEAuthz
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	a, err := tx.ACMEAuthorization(p.ID)
	if err != nil {
		return nil, err
	}
	if a.Status != ACMEStatusPending && a.Status != ACMEStatusValid {
		return nil, Errorf(CodeFailedPrecondition,
			"ACME authorization %q is %s and cannot be deactivated", a.ID, a.Status)
	}
	a.Status = ACMEStatusDeactivated
	if err := tx.put(bucketACMEAuthzs, a.ID, a); err != nil {
		return nil, err
	}
	for i := range a.Challenges {
		if err := unindexValidation(tx, a.Challenges[i].ID); err != nil {
			return nil, err
		}
	}
	return a, refreshACMEOrder(tx, a.OrderID)
}

func applyUpdateACMEChallenge(tx *Tx, cmd *Command) (any, error) {
	var p UpdateACMEChallenge
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	_, authz, err := tx.ACMEChallenge(p.ID)
	if err != nil {
		return nil, err
	}
	ch := challengeIn(authz, p.ID)
	if err := transitionChallenge(authz, ch, &p, cmd.Time); err != nil {
		return nil, err
	}
	if err := tx.put(bucketACMEAuthzs, authz.ID, authz); err != nil {
		return nil, err
	}
	if err := syncValidationIndex(tx, ch); err != nil {
		return nil, err
	}
	if err := refreshACMEOrder(tx, authz.OrderID); err != nil {
		return nil, err
	}
	return ACMEChallengeUpdate{Challenge: *ch, Authorization: *authz}, nil
}

func challengeIn(a *ACMEAuthorization, id string) *ACMEChallenge {
	for i := range a.Challenges {
		if a.Challenges[i].ID == id {
			return &a.Challenges[i]
		}
	}
	return nil
}

// transitionChallenge applies p to ch and its authorization a. A challenge
// result settles the authorization: valid makes it valid, invalid makes it
// invalid (RFC 8555, 7.1.6).
func transitionChallenge(a *ACMEAuthorization, ch *ACMEChallenge, p *UpdateACMEChallenge,
	now time.Time) error {
	if a.Status != ACMEStatusPending {
		return Errorf(CodeFailedPrecondition, "ACME authorization %q is %s, not pending",
			a.ID, a.Status)
	}
	if !now.Before(a.Expires) {
		return Errorf(CodeFailedPrecondition, "ACME authorization %q expired at %s",
			a.ID, a.Expires.Format(time.RFC3339))
	}
	switch {
	case p.Status == ACMEStatusProcessing && ch.Status == ACMEStatusPending:
		ch.Status = ACMEStatusProcessing
		ch.ValidatingNode = p.Node
		ch.ValidationStarted = now
		ch.ValidationDeadline = p.Deadline
	case p.Status == ACMEStatusValid && ch.Status == ACMEStatusProcessing:
		ch.Status = ACMEStatusValid
		ch.Validated = now
		ch.Error = nil
		a.Status = ACMEStatusValid
	case p.Status == ACMEStatusInvalid && ch.Status == ACMEStatusProcessing:
		if p.Node != "" && ch.ValidatingNode != "" && p.Node != ch.ValidatingNode {
			return Errorf(CodeFailedPrecondition,
				"challenge %q is validated by node %q, not %q", ch.ID, ch.ValidatingNode, p.Node)
		}
		ch.Status = ACMEStatusInvalid
		ch.Error = p.Error
		a.Status = ACMEStatusInvalid
	default:
		return Errorf(CodeFailedPrecondition, "challenge %q is %s and cannot become %s",
			ch.ID, ch.Status, p.Status)
	}
	if ch.Status != ACMEStatusProcessing {
		ch.ValidationDeadline = time.Time{}
		ch.RetryAt = time.Time{}
	}
	return nil
}
