package fsm

import "time"

// Command types of ACME orders.
const (
	CmdACMECreateOrder  CommandType = "acme.order.create"
	CmdACMEProcessOrder CommandType = "acme.order.processing"
	CmdACMEFailOrder    CommandType = "acme.order.fail"
	CmdACMERetryOrder   CommandType = "acme.order.retry"
)

// CreateACMEOrder is the payload of CmdACMECreateOrder: a new order with one
// new authorization per identifier, in the order of its identifiers. The
// proposer sets every ID, token and expiry; the handler derives the order's
// status from the authorizations.
type CreateACMEOrder struct {
	Order          ACMEOrder           `json:"order"`
	Authorizations []ACMEAuthorization `json:"authorizations"`
}

// ACMEOrderTransition is the payload of CmdACMEProcessOrder,
// CmdACMEFailOrder and CmdACMERetryOrder.
type ACMEOrderTransition struct {
	ID string `json:"id"`
	// Error is the problem that failed the order (CmdACMEFailOrder only).
	Error *ACMEProblem `json:"error,omitempty"`
}

func init() {
	register(CmdACMECreateOrder, applyCreateACMEOrder)
	register(CmdACMEProcessOrder, applyProcessACMEOrder)
	register(CmdACMEFailOrder, applyFailACMEOrder)
	register(CmdACMERetryOrder, applyRetryACMEOrder)
}

func applyCreateACMEOrder(tx *Tx, cmd *Command) (any, error) {
	var p CreateACMEOrder
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	o := p.Order
	if err := checkNewACMEOrder(tx, &o, p.Authorizations); err != nil {
		return nil, err
	}
	if o.Replaces != "" {
		if err := markReplaced(tx, &o); err != nil {
			return nil, err
		}
	}

	o.Status = ACMEStatusReady
	o.AuthzIDs = nil
	for i := range p.Authorizations {
		a := &p.Authorizations[i]
		if err := putNewACMEAuthorization(tx, a); err != nil {
			return nil, err
		}
		o.AuthzIDs = append(o.AuthzIDs, a.ID)
		if a.Status != ACMEStatusValid {
			o.Status = ACMEStatusPending
		}
	}
	o.Serial = ""
	o.Error = nil
	o.CreatedAt = cmd.Time
	if err := tx.putRaw(bucketACMEAccountOrder, o.AccountID+"|"+o.ID, []byte{}); err != nil {
		return nil, err
	}
	return o, tx.put(bucketACMEOrders, o.ID, o)
}

func checkNewACMEOrder(tx *Tx, o *ACMEOrder, authzs []ACMEAuthorization) error {
	if o.ID == "" || len(o.Identifiers) == 0 {
		return Errorf(CodeInvalidArgument, "ACME order needs an ID and identifiers")
	}
	if len(authzs) != len(o.Identifiers) {
		return Errorf(CodeInvalidArgument, "ACME order %q has %d identifiers but %d authorizations",
			o.ID, len(o.Identifiers), len(authzs))
	}
	if tx.has(bucketACMEOrders, o.ID) {
		return Errorf(CodeAlreadyExists, "ACME order %q already exists", o.ID)
	}
	acct, err := tx.ACMEAccount(o.AccountID)
	if err != nil {
		return err
	}
	if acct.Status != ACMEStatusValid {
		return Errorf(CodeFailedPrecondition, "ACME account %q is %s", acct.ID, acct.Status)
	}
	if acct.ChainID != o.ChainID {
		return Errorf(CodeFailedPrecondition,
			"ACME account %q belongs to chain %q, not %q", acct.ID, acct.ChainID, o.ChainID)
	}
	for i := range authzs {
		if authzs[i].OrderID != o.ID || authzs[i].AccountID != o.AccountID {
			return Errorf(CodeInvalidArgument,
				"authorization %q does not belong to order %q", authzs[i].ID, o.ID)
		}
	}
	return nil
}

// markReplaced records that o renews the certificate o.Replaces (RFC 9773,
// 5). A certificate is replaced by one order unless that order failed.
func markReplaced(tx *Tx, o *ACMEOrder) error {
	cred, err := tx.Credential(o.Replaces)
	if err != nil {
		return err
	}
	if cred.OrderID == "" {
		return Errorf(CodeFailedPrecondition,
			"certificate %s was not issued through ACME", o.Replaces)
	}
	prev, err := tx.ACMEOrder(cred.OrderID)
	if err != nil {
		return err
	}
	if prev.AccountID != o.AccountID {
		return Errorf(CodeFailedPrecondition,
			"certificate %s belongs to another ACME account", o.Replaces)
	}
	if id := tx.ACMEReplacingOrder(o.Replaces); id != "" {
		successor, err := tx.ACMEOrder(id)
		if err != nil {
			return err
		}
		if successor.Status != ACMEStatusInvalid {
			return Errorf(CodeAlreadyExists,
				"certificate %s is already replaced by order %q", o.Replaces, id)
		}
	}
	return tx.putRaw(bucketACMEReplaced, o.Replaces, []byte(o.ID))
}

func putNewACMEAuthorization(tx *Tx, a *ACMEAuthorization) error {
	if a.ID == "" || tx.has(bucketACMEAuthzs, a.ID) {
		return Errorf(CodeAlreadyExists, "ACME authorization %q is missing or exists", a.ID)
	}
	switch a.Status {
	case ACMEStatusValid:
		a.Challenges = []ACMEChallenge{}
	case ACMEStatusPending:
		if len(a.Challenges) == 0 {
			return Errorf(CodeInvalidArgument, "pending authorization %q has no challenge", a.ID)
		}
	default:
		return Errorf(CodeInvalidArgument,
			"new authorization %q has status %q", a.ID, a.Status)
	}
	for i := range a.Challenges {
		ch := &a.Challenges[i]
		if ch.ID == "" || ch.Token == "" || tx.has(bucketACMEChallenges, ch.ID) {
			return Errorf(CodeInvalidArgument,
				"challenge %q of authorization %q needs a new ID and a token", ch.ID, a.ID)
		}
		ch.Status = ACMEStatusPending
		ch.Error = nil
		ch.Validated = time.Time{}
		if err := tx.putRaw(bucketACMEChallenges, ch.ID, []byte(a.ID)); err != nil {
			return err
		}
	}
	return tx.put(bucketACMEAuthzs, a.ID, a)
}

// applyProcessACMEOrder moves a ready order to processing: the single
// compare-and-set that lets one finalize request go on to the CA.
func applyProcessACMEOrder(tx *Tx, cmd *Command) (any, error) {
	var p ACMEOrderTransition
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	o, err := tx.ACMEOrder(p.ID)
	if err != nil {
		return nil, err
	}
	if o.Status != ACMEStatusReady {
		return nil, Errorf(CodeFailedPrecondition, "ACME order %q is %s, not ready", o.ID, o.Status)
	}
	if !cmd.Time.Before(o.Expires) {
		return nil, Errorf(CodeFailedPrecondition, "ACME order %q expired at %s",
			o.ID, o.Expires.Format(time.RFC3339))
	}
	for _, id := range o.AuthzIDs {
		a, err := tx.ACMEAuthorization(id)
		if err != nil {
			return nil, err
		}
		if a.Status != ACMEStatusValid || !cmd.Time.Before(a.Expires) {
			return nil, Errorf(CodeFailedPrecondition,
				"authorization %q of ACME order %q is no longer valid", a.ID, o.ID)
		}
	}
	o.Status = ACMEStatusProcessing
	return o, tx.put(bucketACMEOrders, o.ID, o)
}

// applyFailACMEOrder moves a processing order to invalid after the CA
// rejected its request. An order that already got its certificate stays
// valid.
func applyFailACMEOrder(tx *Tx, cmd *Command) (any, error) {
	var p ACMEOrderTransition
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	o, err := tx.ACMEOrder(p.ID)
	if err != nil {
		return nil, err
	}
	if o.Status != ACMEStatusProcessing {
		return nil, Errorf(CodeFailedPrecondition,
			"ACME order %q is %s, not processing", o.ID, o.Status)
	}
	o.Status = ACMEStatusInvalid
	o.Error = p.Error
	return o, tx.put(bucketACMEOrders, o.ID, o)
}

// applyRetryACMEOrder moves a processing order back to ready after the CA
// failed for a reason other than the request, so the client may finalize
// again. If the CA's credential command is still in flight, it commits after
// this one and is rejected because the order is no longer processing.
func applyRetryACMEOrder(tx *Tx, cmd *Command) (any, error) {
	var p ACMEOrderTransition
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	o, err := tx.ACMEOrder(p.ID)
	if err != nil {
		return nil, err
	}
	if o.Status != ACMEStatusProcessing {
		return nil, Errorf(CodeFailedPrecondition,
			"ACME order %q is %s, not processing", o.ID, o.Status)
	}
	o.Status = ACMEStatusReady
	return o, tx.put(bucketACMEOrders, o.ID, o)
}

// refreshACMEOrder derives a pending or ready order's status from its
// authorizations after one of them changed (RFC 8555, 7.1.6).
func refreshACMEOrder(tx *Tx, orderID string) error {
	o, err := tx.ACMEOrder(orderID)
	if err != nil {
		return err
	}
	if o.Status != ACMEStatusPending && o.Status != ACMEStatusReady {
		return nil
	}
	status := ACMEStatusReady
	for _, id := range o.AuthzIDs {
		a, err := tx.ACMEAuthorization(id)
		if err != nil {
			return err
		}
		switch a.Status {
		case ACMEStatusValid:
		case ACMEStatusPending:
			if status == ACMEStatusReady {
				status = ACMEStatusPending
			}
		default:
			status = ACMEStatusInvalid
		}
	}
	if status == o.Status {
		return nil
	}
	o.Status = status
	return tx.put(bucketACMEOrders, o.ID, o)
}
