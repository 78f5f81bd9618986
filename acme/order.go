package acme

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"anchor/ca"
	"anchor/fsm"
)

// Challenge types (RFC 8555, 8.3 and 8.4; RFC 8737).
const (
	challengeHTTP01    = "http-01"
	challengeDNS01     = "dns-01"
	challengeTLSALPN01 = "tls-alpn-01"
)

type newOrderRequest struct {
	Identifiers []fsm.ACMEIdentifier `json:"identifiers"`
	NotBefore   string               `json:"notBefore"`
	NotAfter    string               `json:"notAfter"`
	Replaces    string               `json:"replaces"`
	Profile     string               `json:"profile"`
}

// handleNewOrder creates an order with one authorization per identifier
// (RFC 8555, 7.4). Identifiers inside the scope of the account's EAB key get
// valid authorizations, so such an order starts ready.
func (s *Server) handleNewOrder(w http.ResponseWriter, r *http.Request, c *call) error {
	sr, err := s.readSigned(w, r, c, byKID)
	if err != nil {
		return err
	}
	var req newOrderRequest
	if err := sr.decode(&req); err != nil {
		return err
	}
	if req.NotBefore != "" || req.NotAfter != "" {
		return malformed("notBefore and notAfter are not supported: the SubCA policy sets " +
			"the validity")
	}

	ids, err := normalizeIdentifiers(req.Identifiers)
	if err != nil {
		return err
	}
	if err := s.checkProfile(req.Profile); err != nil {
		return err
	}
	replaces, err := s.checkReplaces(c, sr.account, req.Replaces, ids)
	if err != nil {
		return err
	}

	scope, err := s.eabScope(sr.account, ids)
	if err != nil {
		return err
	}
	if err := s.checkSubCAPolicy(sr.account, ids); err != nil {
		return err
	}
	p := s.buildOrder(sr.account, ids, scope, time.Now())
	p.Order.Profile = req.Profile
	p.Order.Replaces = replaces
	return s.createOrder(w, r, c, p)
}

func (s *Server) checkProfile(profile string) error {
	if profile == "" {
		return nil
	}
	if _, ok := s.opts.Profiles[profile]; !ok {
		return newProblem(probInvalidProfile, http.StatusBadRequest,
			"profile %q is not offered by this directory", profile)
	}
	return nil
}

// eabScope returns the identifiers that the account's EAB key pre-authorizes.
// An account bound through a service's EAB key may order only the names the
// service records, so other identifiers are rejected here, before any state
// changes.
func (s *Server) eabScope(acct *fsm.ACMEAccount, ids []fsm.ACMEIdentifier) ([]string, error) {
	var scope []string
	var outside []string
	err := s.state.View(func(tx *fsm.Tx) error {
		key, err := tx.EABKey(acct.EABKeyID)
		if err != nil {
			return err
		}
		scope = key.Identifiers
		if key.ServiceID == "" {
			return nil
		}
		svc, err := tx.Service(key.ServiceID)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if !svc.Covers(id.Value) {
				outside = append(outside, id.Value)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(outside) > 0 {
		return nil, newProblem(probRejectedIdentifier, http.StatusBadRequest,
			"identifiers %v are not among the names this account's service may request", outside)
	}
	return scope, nil
}

// checkSubCAPolicy rejects identifiers that the SubCA which would sign the order
// does not allow, by name type or name constraint, before any state changes
// (RFC 8555, 7.4). The SubCA is the one finalize requests from the CA: the EAB key's,
// else the key's service's SubCA in the chain's realm, else the chain's default.
func (s *Server) checkSubCAPolicy(acct *fsm.ACMEAccount, ids []fsm.ACMEIdentifier) error {
	values := make([]string, len(ids))
	for i, id := range ids {
		values[i] = id.Value
	}
	var rejected error
	err := s.state.View(func(tx *fsm.Tx) error {
		key, err := tx.EABKey(acct.EABKeyID)
		if err != nil {
			return err
		}
		chain, err := tx.Chain(acct.ChainID)
		if err != nil {
			return err
		}
		var svc *fsm.Service
		if key.ServiceID != "" {
			if svc, err = tx.Service(key.ServiceID); err != nil {
				return err
			}
		}
		sub, err := tx.CA(ca.SigningSubCA(chain, svc, key.SubCAID))
		if err != nil {
			return err
		}
		rejected = fsm.CheckIdentifiersAllowed(values, sub)
		return nil
	})
	if err != nil {
		return err
	}
	var fe *fsm.Error
	if errors.As(rejected, &fe) {
		return newProblem(probRejectedIdentifier, http.StatusBadRequest, "%s", fe.Message)
	}
	return rejected
}

// buildOrder assembles the order and its authorizations with fresh IDs.
func (s *Server) buildOrder(acct *fsm.ACMEAccount, ids []fsm.ACMEIdentifier, scope []string,
	now time.Time) *fsm.CreateACMEOrder {
	expires := now.UTC().Truncate(time.Second).Add(s.opts.OrderLifetime)
	o := fsm.ACMEOrder{
		ID: newID(), AccountID: acct.ID, ChainID: acct.ChainID,
		Identifiers: ids, Expires: expires,
	}
	p := &fsm.CreateACMEOrder{Order: o}
	for _, id := range ids {
		base, wildcard := authzIdentifier(id)
		a := fsm.ACMEAuthorization{
			ID: newID(), AccountID: acct.ID, OrderID: o.ID,
			Identifier: base, Wildcard: wildcard, Expires: expires,
			Status: fsm.ACMEStatusPending,
		}
		if inScope(scope, id) {
			a.Status = fsm.ACMEStatusValid
			a.PreAuthorized = true
		} else {
			a.Challenges = newChallenges(base, wildcard)
		}
		p.Authorizations = append(p.Authorizations, a)
	}
	return p
}

// newChallenges offers every challenge type that can prove the identifier.
// A wildcard gets only dns-01 (RFC 8555, 7.1.3), and an IP address gets no
// dns-01 (RFC 8738).
func newChallenges(id fsm.ACMEIdentifier, wildcard bool) []fsm.ACMEChallenge {
	var types []string
	switch {
	case wildcard:
		types = []string{challengeDNS01}
	case id.Type == fsm.ACMEIdentifierIP:
		types = []string{challengeHTTP01, challengeTLSALPN01}
	default:
		types = []string{challengeHTTP01, challengeDNS01, challengeTLSALPN01}
	}
	out := make([]fsm.ACMEChallenge, 0, len(types))
	for _, t := range types {
		out = append(out, fsm.ACMEChallenge{
			ID: newID(), Type: t, Token: newToken(), Status: fsm.ACMEStatusPending,
		})
	}
	return out
}

// newToken returns a challenge token of 256 random bits, base64url. RFC
// 8555, 8.3, requires at least 128 bits.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) createOrder(w http.ResponseWriter, r *http.Request, c *call,
	p *fsm.CreateACMEOrder) error {
	var created fsm.ACMEOrder
	err := s.propose(r.Context(), fsm.CmdACMECreateOrder, p, &created)
	if fsm.CodeOf(err) == fsm.CodeAlreadyExists && p.Order.Replaces != "" {
		return newProblem(probAlreadyReplaced, http.StatusConflict, "%s", err.Error())
	}
	if err != nil {
		return err
	}
	if err := s.awaitLocal(r.Context(), func(tx *fsm.Tx) bool {
		_, err := tx.ACMEOrder(created.ID)
		return err == nil
	}); err != nil {
		return err
	}
	s.logger.Info("acme order created", "order", created.ID, "account", created.AccountID,
		"status", created.Status, "identifiers", len(created.Identifiers))
	w.Header().Set("Location", c.url("order", created.ID))
	writeJSON(w, http.StatusCreated, c.orderJSON(&created, time.Now()))
	return nil
}

// handleOrder returns an order to its account (POST-as-GET).
func (s *Server) handleOrder(w http.ResponseWriter, r *http.Request, c *call) error {
	sr, err := s.readSigned(w, r, c, byKID)
	if err != nil {
		return err
	}
	if !sr.postAsGet() {
		return malformed("orders are read with POST-as-GET (empty payload)")
	}
	o, err := s.ownOrder(sr.account, r.PathValue("id"))
	if err != nil {
		return err
	}
	if o.Status == fsm.ACMEStatusProcessing {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, http.StatusOK, c.orderJSON(o, time.Now()))
	return nil
}

// ownOrder returns an order of acct.
func (s *Server) ownOrder(acct *fsm.ACMEAccount, id string) (*fsm.ACMEOrder, error) {
	var o *fsm.ACMEOrder
	err := s.state.View(func(tx *fsm.Tx) error {
		var err error
		o, err = tx.ACMEOrder(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if o.AccountID != acct.ID {
		return nil, unauthorized("order %q belongs to another account", id)
	}
	return o, nil
}
