package fsm

import (
	"encoding/binary"
	"time"
)

// Command types of a processing ACME challenge's validation.
const (
	CmdACMERetryChallenge CommandType = "acme.challenge.retry"
	CmdACMEClaimChallenge CommandType = "acme.challenge.claim"
)

// RetryACMEChallenge is the payload of CmdACMERetryChallenge: a validation
// attempt by the validating node failed and the node tries again at RetryAt
// (RFC 8555, 8.2). The challenge stays processing and shows Error.
type RetryACMEChallenge struct {
	ID      string       `json:"id"`
	Node    string       `json:"node"`
	Error   *ACMEProblem `json:"error"`
	RetryAt time.Time    `json:"retry_at"`
	// Deadline is the latest time by which Node commits its next update.
	Deadline time.Time `json:"deadline"`
}

// ClaimACMEChallenge is the payload of CmdACMEClaimChallenge: Node takes
// over the validation of a processing challenge. Without Force the claim
// succeeds only after the validating node's deadline has passed, so the
// leader takes over a stalled validation and never a running one. Force,
// set when a client posts to the challenge again, claims at once.
type ClaimACMEChallenge struct {
	ID   string `json:"id"`
	Node string `json:"node"`
	// Deadline is the latest time by which Node commits its next update.
	Deadline time.Time `json:"deadline"`
	Force    bool      `json:"force,omitempty"`
}

// ACMEChallengeClaim is the result of CmdACMEClaimChallenge. A claim that
// does not succeed is not an error: when the challenge no longer needs a
// validation, the command also drops it from the stalled-validation index.
type ACMEChallengeClaim struct {
	// Claimed reports whether Node now validates the challenge.
	Claimed bool `json:"claimed"`
	// Reason is why the claim did not succeed.
	Reason string `json:"reason,omitempty"`
	// PreviousNode is the validating node before the claim.
	PreviousNode string        `json:"previous_node,omitempty"`
	Challenge    ACMEChallenge `json:"challenge"`
}

func init() {
	register(CmdACMERetryChallenge, applyRetryACMEChallenge)
	register(CmdACMEClaimChallenge, applyClaimACMEChallenge)
}

func applyRetryACMEChallenge(tx *Tx, cmd *Command) (any, error) {
	var p RetryACMEChallenge
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if p.Node == "" || p.Deadline.IsZero() {
		return nil, Errorf(CodeInvalidArgument, "challenge retry needs a node and a deadline")
	}
	_, authz, err := tx.ACMEChallenge(p.ID)
	if err != nil {
		return nil, err
	}
	ch := challengeIn(authz, p.ID)
	if reason := validationClosed(authz, ch, cmd.Time); reason != "" {
		return nil, Errorf(CodeFailedPrecondition, "challenge %q cannot be retried: %s",
			ch.ID, reason)
	}
	if ch.ValidatingNode != p.Node {
		return nil, Errorf(CodeFailedPrecondition,
			"challenge %q is validated by node %q, not %q", ch.ID, ch.ValidatingNode, p.Node)
	}

	ch.Error = p.Error
	ch.FailedAttempts++
	ch.RetryAt = p.RetryAt
	ch.ValidationDeadline = p.Deadline
	if err := tx.put(bucketACMEAuthzs, authz.ID, authz); err != nil {
		return nil, err
	}
	return *ch, syncValidationIndex(tx, ch)
}

func applyClaimACMEChallenge(tx *Tx, cmd *Command) (any, error) {
	var p ClaimACMEChallenge
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if p.Node == "" || p.Deadline.IsZero() {
		return nil, Errorf(CodeInvalidArgument, "challenge claim needs a node and a deadline")
	}
	_, authz, err := tx.ACMEChallenge(p.ID)
	if err != nil {
		return nil, err
	}
	ch := challengeIn(authz, p.ID)
	res := ACMEChallengeClaim{PreviousNode: ch.ValidatingNode}
	if reason := validationClosed(authz, ch, cmd.Time); reason != "" {
		res.Reason = reason
		res.Challenge = *ch
		return res, unindexValidation(tx, ch.ID)
	}
	if !p.Force && cmd.Time.Before(ch.ValidationDeadline) {
		res.Reason = "node " + ch.ValidatingNode + " validates it until " +
			ch.ValidationDeadline.UTC().Format(time.RFC3339)
		res.Challenge = *ch
		return res, nil
	}

	ch.ValidatingNode = p.Node
	ch.ValidationStarted = cmd.Time
	ch.ValidationDeadline = p.Deadline
	ch.RetryAt = time.Time{}
	if err := tx.put(bucketACMEAuthzs, authz.ID, authz); err != nil {
		return nil, err
	}
	res.Claimed = true
	res.Challenge = *ch
	return res, syncValidationIndex(tx, ch)
}

// validationClosed returns why a challenge needs no further validation, or
// "" while it does.
func validationClosed(a *ACMEAuthorization, ch *ACMEChallenge, now time.Time) string {
	switch {
	case ch.Status != ACMEStatusProcessing:
		return "the challenge is " + ch.Status
	case a.Status != ACMEStatusPending:
		return "its authorization is " + a.Status
	case !now.Before(a.Expires):
		return "its authorization expired at " + a.Expires.UTC().Format(time.RFC3339)
	}
	return ""
}

// syncValidationIndex lists a processing challenge that has a deadline in
// the stalled-validation index and drops any other challenge from it.
func syncValidationIndex(tx *Tx, ch *ACMEChallenge) error {
	if ch.Status != ACMEStatusProcessing || ch.ValidationDeadline.IsZero() {
		return unindexValidation(tx, ch.ID)
	}
	return tx.putRaw(bucketACMEValidations, ch.ID,
		uint64Bytes(uint64(ch.ValidationDeadline.UnixNano())))
}

func unindexValidation(tx *Tx, challengeID string) error {
	return tx.del(bucketACMEValidations, challengeID)
}

// ACMEStalledValidations returns the IDs of processing challenges whose
// validation deadline is before now, up to limit of them. The index holds
// only validations in flight, so the scan stays short.
func (t *Tx) ACMEStalledValidations(now time.Time, limit int) []string {
	var ids []string
	t.scan(bucketACMEValidations, "", func(key string, value []byte) bool {
		if len(value) == 8 && int64(binary.BigEndian.Uint64(value)) < now.UnixNano() {
			ids = append(ids, key)
		}
		return len(ids) < limit
	})
	return ids
}
