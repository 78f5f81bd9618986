package acme

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/mail"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"anchor/fsm"
)

// maxContacts bounds the contact URLs of one account.
const maxContacts = 10

type newAccountRequest struct {
	Contact                []string        `json:"contact"`
	TermsOfServiceAgreed   bool            `json:"termsOfServiceAgreed"`
	OnlyReturnExisting     bool            `json:"onlyReturnExisting"`
	ExternalAccountBinding json.RawMessage `json:"externalAccountBinding"`
}

// handleNewAccount creates an account bound to an EAB key, or returns the
// existing account of the request's key (RFC 8555, 7.3).
func (s *Server) handleNewAccount(w http.ResponseWriter, r *http.Request, c *call) error {
	sr, err := s.readSigned(w, r, c, byJWK)
	if err != nil {
		return err
	}
	var req newAccountRequest
	if err := sr.decode(&req); err != nil {
		return err
	}

	thumbprint, err := jwkThumbprint(sr.key)
	if err != nil {
		return err
	}
	existing, err := s.accountByThumbprint(c.chainID, thumbprint)
	if err != nil {
		return err
	}
	if existing != nil {
		return s.writeAccount(w, http.StatusOK, c, existing)
	}
	if req.OnlyReturnExisting {
		return newProblem(probAccountDoesNotExist, http.StatusBadRequest,
			"no account exists for this key")
	}

	if err := checkContacts(req.Contact); err != nil {
		return err
	}
	eab, err := s.verifyEAB(c, req.ExternalAccountBinding, sr.key)
	if err != nil {
		return err
	}
	return s.createAccount(w, r, c, sr.key, thumbprint, req.Contact, eab.KeyID)
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request, c *call,
	key *jose.JSONWebKey, thumbprint string, contact []string, eabKeyID string) error {
	jwk, err := key.Public().MarshalJSON()
	if err != nil {
		return malformed("account key does not encode: %v", err)
	}
	acct := fsm.ACMEAccount{
		ID: newID(), ChainID: c.chainID, Thumbprint: thumbprint, JWK: jwk,
		Contact: contact, EABKeyID: eabKeyID,
	}
	var created fsm.ACMEAccount
	err = s.proposeAs(r.Context(), accountActor(acct.ID), fsm.CmdACMECreateAccount,
		fsm.CreateACMEAccount{Account: acct}, &created)
	switch fsm.CodeOf(err) {
	case fsm.CodeAlreadyExists:
		// Another request registered the same key meanwhile.
		if existing, _ := s.accountByThumbprint(c.chainID, thumbprint); existing != nil {
			return s.writeAccount(w, http.StatusOK, c, existing)
		}
		return err
	case fsm.CodeFailedPrecondition:
		return unauthorized("%s", err.Error())
	}
	if err != nil {
		return err
	}
	if err := s.awaitLocal(r.Context(), func(tx *fsm.Tx) bool {
		_, err := tx.ACMEAccount(created.ID)
		return err == nil
	}); err != nil {
		return err
	}
	s.logger.Info("acme account created", "account", created.ID, "chain", c.chainID,
		"eab_key", eabKeyID)
	return s.writeAccount(w, http.StatusCreated, c, &created)
}

func (s *Server) writeAccount(w http.ResponseWriter, status int, c *call,
	acct *fsm.ACMEAccount) error {
	if acct.Status != fsm.ACMEStatusValid {
		return unauthorized("account %q is %s", acct.ID, acct.Status)
	}
	w.Header().Set("Location", c.url("account", acct.ID))
	writeJSON(w, status, c.accountJSON(acct))
	return nil
}

// accountByThumbprint returns the chain's account with the given key, or nil.
func (s *Server) accountByThumbprint(chainID, thumbprint string) (*fsm.ACMEAccount, error) {
	var acct *fsm.ACMEAccount
	err := s.state.View(func(tx *fsm.Tx) error {
		var err error
		acct, err = tx.ACMEAccountByThumbprint(chainID, thumbprint)
		return err
	})
	if fsm.IsNotFound(err) {
		return nil, nil
	}
	return acct, err
}

// jwkThumbprint returns the RFC 7638 SHA-256 thumbprint, base64url.
func jwkThumbprint(key *jose.JSONWebKey) (string, error) {
	sum, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", newProblem(probBadPublicKey, http.StatusBadRequest,
			"cannot compute the key thumbprint: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// checkContacts accepts mailto: URLs with one address each (RFC 8555,
// 7.3).
func checkContacts(contacts []string) error {
	if len(contacts) > maxContacts {
		return newProblem(probInvalidContact, http.StatusBadRequest,
			"at most %d contacts are allowed", maxContacts)
	}
	for _, c := range contacts {
		addr, ok := strings.CutPrefix(c, "mailto:")
		if !ok {
			return newProblem(probUnsupportedContact, http.StatusBadRequest,
				"contact %q is not a mailto: URL", c)
		}
		parsed, err := mail.ParseAddress(addr)
		if err != nil || parsed.Address != addr || strings.ContainsAny(addr, ",?") {
			return newProblem(probInvalidContact, http.StatusBadRequest,
				"contact %q is not one plain email address", c)
		}
	}
	return nil
}

// newID returns a random identifier of 128 bits that is safe in URLs.
func newID() string { return rand.Text() }

// accountActor names an ACME account in the audit trail.
func accountActor(id string) string { return "acme-account:" + id }
