package fsm

import (
	"encoding/json"
	"time"
)

// Buckets of ACME state (RFC 8555).
const (
	bucketACMEAccounts     = "acme_accounts"
	bucketACMEAccountByKey = "acme_account_by_key" // chain ID + "|" + JWK thumbprint
	bucketACMEOrders       = "acme_orders"
	bucketACMEAuthzs       = "acme_authorizations"
	bucketACMEChallenges   = "acme_challenge_authz" // challenge ID -> authorization ID
	bucketACMEReplaced     = "acme_replaced"        // serial -> ID of the replacing order
	bucketACMEAccountOrder = "acme_account_orders"  // account ID + "|" + order ID
	bucketACMEValidations  = "acme_validations"     // challenge ID -> deadline (Unix ns)
)

// ACME object statuses (RFC 8555, 7.1.6).
const (
	ACMEStatusPending     = "pending"
	ACMEStatusReady       = "ready"
	ACMEStatusProcessing  = "processing"
	ACMEStatusValid       = "valid"
	ACMEStatusInvalid     = "invalid"
	ACMEStatusDeactivated = "deactivated"
	ACMEStatusRevoked     = "revoked"
	ACMEStatusExpired     = "expired"
)

// ACME identifier types (RFC 8555, 9.7.7, and RFC 8738).
const (
	ACMEIdentifierDNS = "dns"
	ACMEIdentifierIP  = "ip"
)

// ACMEIdentifier is an identifier an order or authorization is for. DNS
// values are lower-case; a wildcard order keeps its "*." prefix while its
// authorization names the base domain.
type ACMEIdentifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// ACMEProblem is a stored ACME error: the problem type URN and its detail.
type ACMEProblem struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
}

// ACMEAccount is an ACME account, bound to one chain by its EAB key.
type ACMEAccount struct {
	ID      string `json:"id"`
	ChainID string `json:"chain_id"`
	// Thumbprint is the RFC 7638 SHA-256 thumbprint of JWK, base64url.
	Thumbprint string          `json:"thumbprint"`
	JWK        json.RawMessage `json:"jwk"`
	Status     string          `json:"status"`
	Contact    []string        `json:"contact,omitempty"`
	EABKeyID   string          `json:"eab_key_id"`
	CreatedAt  time.Time       `json:"created_at"`
}

// ACMEOrder is a request for one certificate.
type ACMEOrder struct {
	ID          string           `json:"id"`
	AccountID   string           `json:"account_id"`
	ChainID     string           `json:"chain_id"`
	Status      string           `json:"status"`
	Identifiers []ACMEIdentifier `json:"identifiers"`
	AuthzIDs    []string         `json:"authz_ids"`
	NotBefore   time.Time        `json:"not_before,omitzero"`
	NotAfter    time.Time        `json:"not_after,omitzero"`
	Expires     time.Time        `json:"expires"`
	Profile     string           `json:"profile,omitempty"`
	// Replaces is the serial (see SerialKey) of the certificate this order
	// renews (RFC 9773).
	Replaces string `json:"replaces,omitempty"`
	// Serial is the serial of the issued certificate once the order is valid.
	Serial    string       `json:"serial,omitempty"`
	Error     *ACMEProblem `json:"error,omitempty"`
	CreatedAt time.Time    `json:"created_at"`
}

// ACMEAuthorization proves control of one identifier for one order.
// Authorizations are not shared between orders.
type ACMEAuthorization struct {
	ID         string         `json:"id"`
	AccountID  string         `json:"account_id"`
	OrderID    string         `json:"order_id"`
	Identifier ACMEIdentifier `json:"identifier"`
	Wildcard   bool           `json:"wildcard,omitempty"`
	Status     string         `json:"status"`
	Expires    time.Time      `json:"expires"`
	// PreAuthorized is set when the account's EAB key scope covered the
	// identifier, so the authorization was created valid without challenges.
	PreAuthorized bool            `json:"pre_authorized,omitempty"`
	Challenges    []ACMEChallenge `json:"challenges"`
}

// ACMEChallenge is one way to prove control of an authorization's
// identifier.
type ACMEChallenge struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Token     string    `json:"token"`
	Status    string    `json:"status"`
	Validated time.Time `json:"validated,omitzero"`
	// Error is the problem of the last failed validation attempt. A
	// processing challenge keeps it while the server retries (RFC 8555, 8.2).
	Error *ACMEProblem `json:"error,omitempty"`

	// ValidatingNode is the ID of the node that validates the challenge
	// while it is processing, and that validated it afterwards.
	ValidatingNode string `json:"validating_node,omitempty"`
	// ValidationStarted is when ValidatingNode took the validation on.
	ValidationStarted time.Time `json:"validation_started,omitzero"`
	// ValidationDeadline is the latest time by which ValidatingNode commits
	// its next update of a processing challenge. Once it has passed, the
	// leader may take the validation over (CmdACMEClaimChallenge).
	ValidationDeadline time.Time `json:"validation_deadline,omitzero"`
	// FailedAttempts counts the failed validation attempts that were
	// followed by a retry.
	FailedAttempts int `json:"failed_attempts,omitempty"`
	// RetryAt is when ValidatingNode makes its next attempt.
	RetryAt time.Time `json:"retry_at,omitzero"`
}

// completeOrder marks an ACME order valid with the serial of its certificate.
// It fails unless the order is processing, so an order gets one certificate.
func completeOrder(tx *Tx, orderID, serial string, _ time.Time) error {
	o, err := tx.ACMEOrder(orderID)
	if err != nil {
		return err
	}
	if o.Status != ACMEStatusProcessing {
		return Errorf(CodeFailedPrecondition,
			"order %q is %s, not processing: it cannot take a certificate", orderID, o.Status)
	}
	o.Status = ACMEStatusValid
	o.Serial = serial
	return tx.put(bucketACMEOrders, o.ID, o)
}

// ACMEAccount returns an ACME account by its ID.
func (t *Tx) ACMEAccount(id string) (*ACMEAccount, error) {
	var a ACMEAccount
	ok, err := t.get(bucketACMEAccounts, id, &a)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "ACME account %q not found", id)
	}
	return &a, nil
}

// ACMEAccountByThumbprint returns the account of a chain whose key has the
// given RFC 7638 thumbprint.
func (t *Tx) ACMEAccountByThumbprint(chainID, thumbprint string) (*ACMEAccount, error) {
	id := t.getRaw(bucketACMEAccountByKey, chainID+"|"+thumbprint)
	if id == nil {
		return nil, Errorf(CodeNotFound, "no ACME account of chain %q has key %s", chainID, thumbprint)
	}
	return t.ACMEAccount(string(id))
}

// ACMEOrder returns an ACME order by its ID.
func (t *Tx) ACMEOrder(id string) (*ACMEOrder, error) {
	var o ACMEOrder
	ok, err := t.get(bucketACMEOrders, id, &o)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "ACME order %q not found", id)
	}
	return &o, nil
}

// ACMEAuthorization returns an ACME authorization by its ID.
func (t *Tx) ACMEAuthorization(id string) (*ACMEAuthorization, error) {
	var a ACMEAuthorization
	ok, err := t.get(bucketACMEAuthzs, id, &a)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "ACME authorization %q not found", id)
	}
	return &a, nil
}

// ACMEChallenge returns a challenge and the authorization that contains it.
func (t *Tx) ACMEChallenge(id string) (*ACMEChallenge, *ACMEAuthorization, error) {
	authzID := t.getRaw(bucketACMEChallenges, id)
	if authzID == nil {
		return nil, nil, Errorf(CodeNotFound, "ACME challenge %q not found", id)
	}
	authz, err := t.ACMEAuthorization(string(authzID))
	if err != nil {
		return nil, nil, err
	}
	for i := range authz.Challenges {
		if authz.Challenges[i].ID == id {
			return &authz.Challenges[i], authz, nil
		}
	}
	return nil, nil, Errorf(CodeNotFound, "ACME challenge %q not found", id)
}

// ACMEReplacingOrder returns the ID of the order that named the certificate
// with the given serial in its "replaces" field, or "" when none did.
func (t *Tx) ACMEReplacingOrder(serial string) string {
	return string(t.getRaw(bucketACMEReplaced, serial))
}

// ACMEOrderIDs lists the IDs of an account's orders, in key order.
func (t *Tx) ACMEOrderIDs(accountID string) []string {
	var ids []string
	prefix := accountID + "|"
	t.scan(bucketACMEAccountOrder, prefix, func(key string, _ []byte) bool {
		ids = append(ids, key[len(prefix):])
		return true
	})
	return ids
}
