package acme

import (
	"encoding/json"
	"net/http"

	"github.com/go-jose/go-jose/v4"

	"anchor/fsm"
)

type keyChangeRequest struct {
	Account string          `json:"account"`
	OldKey  json.RawMessage `json:"oldKey"`
}

// handleKeyChange rolls an account over to a new key (RFC 8555, 7.3.5). The
// outer JWS is signed by the current key, the inner one by the new key.
func (s *Server) handleKeyChange(w http.ResponseWriter, r *http.Request, c *call) error {
	sr, err := s.readSigned(w, r, c, byKID)
	if err != nil {
		return err
	}
	newKey, req, err := verifyInnerKeyChange(sr)
	if err != nil {
		return err
	}
	if req.Account != sr.header.KID {
		return unauthorized("keyChange \"account\" %q is not the signing account %q",
			req.Account, sr.header.KID)
	}

	var oldKey jose.JSONWebKey
	if err := oldKey.UnmarshalJSON(req.OldKey); err != nil {
		return malformed("keyChange \"oldKey\" is not a JWK: %v", err)
	}
	oldThumbprint, err := jwkThumbprint(&oldKey)
	if err != nil {
		return err
	}
	if oldThumbprint != sr.account.Thumbprint {
		return unauthorized("keyChange \"oldKey\" is not the account's current key")
	}
	newThumbprint, err := jwkThumbprint(newKey)
	if err != nil {
		return err
	}
	if err := s.checkKeyUnused(c, newThumbprint); err != nil {
		return err
	}
	return s.changeKey(w, r, c, sr.account, newKey, newThumbprint)
}

// verifyInnerKeyChange checks the inner JWS: signed by the embedded new key,
// with the outer "url" and no nonce.
func verifyInnerKeyChange(sr *signedRequest) (*jose.JSONWebKey, *keyChangeRequest, error) {
	inner, err := parseJWS(sr.payload)
	if err != nil {
		return nil, nil, err
	}
	if inner.jwk == nil || inner.header.KID != "" {
		return nil, nil, malformed("the inner keyChange JWS must carry the new key in \"jwk\"")
	}
	if inner.header.Nonce != "" {
		return nil, nil, malformed("the inner keyChange JWS must not carry a nonce")
	}
	if inner.header.URL != sr.header.URL {
		return nil, nil, malformed("the inner keyChange JWS \"url\" differs from the outer one")
	}
	payload, err := inner.verify(inner.jwk)
	if err != nil {
		return nil, nil, err
	}
	var req keyChangeRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, nil, malformed("invalid keyChange payload: %v", err)
	}
	return inner.jwk, &req, nil
}

// checkKeyUnused returns 409 Conflict with the owner's URL when another
// account of the chain has the key.
func (s *Server) checkKeyUnused(c *call, thumbprint string) error {
	owner, err := s.accountByThumbprint(c.chainID, thumbprint)
	if err != nil {
		return err
	}
	if owner != nil {
		p := newProblem(probMalformed, http.StatusConflict,
			"the new key is already the key of an account")
		p.location = c.url("account", owner.ID)
		return p
	}
	return nil
}

func (s *Server) changeKey(w http.ResponseWriter, r *http.Request, c *call,
	acct *fsm.ACMEAccount, newKey *jose.JSONWebKey, thumbprint string) error {
	jwk, err := newKey.Public().MarshalJSON()
	if err != nil {
		return malformed("new key does not encode: %v", err)
	}
	var updated fsm.ACMEAccount
	err = s.proposeAs(r.Context(), accountActor(acct.ID), fsm.CmdACMEChangeAccountKey, fsm.ChangeACMEAccountKey{
		ID: acct.ID, OldThumbprint: acct.Thumbprint, Thumbprint: thumbprint, JWK: jwk,
	}, &updated)
	switch fsm.CodeOf(err) {
	case fsm.CodeAlreadyExists:
		if conflict := s.checkKeyUnused(c, thumbprint); conflict != nil {
			return conflict
		}
		return err
	case fsm.CodeFailedPrecondition:
		return newProblem(probMalformed, http.StatusConflict, "%s", err.Error())
	}
	if err != nil {
		return err
	}
	if err := s.awaitLocal(r.Context(), func(tx *fsm.Tx) bool {
		a, err := tx.ACMEAccount(acct.ID)
		return err == nil && a.Thumbprint == thumbprint
	}); err != nil {
		return err
	}
	s.logger.Info("acme account key changed", "account", acct.ID)
	return s.writeAccount(w, http.StatusOK, c, &updated)
}
