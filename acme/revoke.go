package acme

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"net/http"

	"anchor/fsm"
)

// allowedRevocationReasons lists the CRLReason codes (RFC 5280, 5.3.1) a
// subscriber may give: unspecified, keyCompromise, affiliationChanged,
// superseded, cessationOfOperation and privilegeWithdrawn.
var allowedRevocationReasons = map[int]bool{0: true, 1: true, 3: true, 4: true, 5: true, 9: true}

type revokeRequest struct {
	Certificate string `json:"certificate"`
	Reason      *int   `json:"reason"`
}

// handleRevoke revokes a certificate (RFC 8555, 7.6). The request is signed
// either by the account that ordered the certificate ("kid") or by the
// certificate's own key ("jwk").
//
// NOTE: an account that holds authorizations for every name of a
// certificate it did not order cannot revoke it; RFC 8555 allows that.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, c *call) error {
	sr, err := s.readSigned(w, r, c, byEither)
	if err != nil {
		return err
	}
	var req revokeRequest
	if err := sr.decode(&req); err != nil {
		return err
	}
	reason := 0
	if req.Reason != nil {
		reason = *req.Reason
	}
	if !allowedRevocationReasons[reason] {
		return newProblem(probBadRevocationReason, http.StatusBadRequest,
			"revocation reason %d is not allowed: use 0, 1, 3, 4, 5 or 9", reason)
	}
	der, err := base64.RawURLEncoding.DecodeString(req.Certificate)
	if err != nil {
		return malformed("\"certificate\" is not base64url DER")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return malformed("\"certificate\" does not parse: %v", err)
	}
	cred, err := s.revocable(c, sr, cert)
	if err != nil {
		return err
	}
	return s.revoke(w, r, c, cred, reason)
}

// revocable finds the credential of cert and checks that the signer may
// revoke it.
func (s *Server) revocable(c *call, sr *signedRequest, cert *x509.Certificate) (
	*fsm.Credential, error) {
	var cred *fsm.Credential
	err := s.state.View(func(tx *fsm.Tx) error {
		var err error
		cred, err = tx.Credential(fsm.SerialKey(cert.SerialNumber))
		if fsm.IsNotFound(err) || (err == nil && !bytes.Equal(cred.DER, cert.Raw)) {
			return notFound("the certificate was not issued by this server")
		}
		if err != nil {
			return err
		}
		issuer, err := tx.CA(cred.CAID)
		if err != nil {
			return err
		}
		if issuer.ChainID != c.chainID {
			return notFound("the certificate was not issued by this directory's chain")
		}
		if sr.account != nil {
			return checkCredentialOwner(tx, cred, sr.account)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if sr.account == nil {
		if err := checkCertificateKey(sr, cert); err != nil {
			return nil, err
		}
	}
	if cred.Revoked {
		return nil, newProblem(probAlreadyRevoked, http.StatusBadRequest,
			"certificate %s is already revoked", cred.Serial)
	}
	return cred, nil
}

// checkCertificateKey requires the JWS key to be the certificate's key.
func checkCertificateKey(sr *signedRequest, cert *x509.Certificate) error {
	spki, err := x509.MarshalPKIXPublicKey(sr.key.Key)
	if err != nil || !bytes.Equal(spki, cert.RawSubjectPublicKeyInfo) {
		return unauthorized("the request is not signed by the certificate's key")
	}
	return nil
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request, c *call,
	cred *fsm.Credential, reason int) error {
	actor := "acme-certificate-key:" + cred.Serial
	if c.account != nil {
		actor = accountActor(c.account.ID)
	}
	err := s.proposeAs(r.Context(), actor, fsm.CmdRevoke, fsm.Revoke{Serial: cred.Serial, Reason: reason},
		nil)
	if fsm.CodeOf(err) == fsm.CodeAlreadyExists {
		return newProblem(probAlreadyRevoked, http.StatusBadRequest, "%s", err.Error())
	}
	if err != nil {
		return err
	}
	if err := s.awaitLocal(r.Context(), func(tx *fsm.Tx) bool {
		got, err := tx.Credential(cred.Serial)
		return err == nil && got.Revoked
	}); err != nil {
		return err
	}
	by := "certificate key"
	if c.account != nil {
		by = "account " + c.account.ID
	}
	s.logger.Info("acme certificate revoked", "serial", cred.Serial, "reason", reason,
		"by", by)
	w.WriteHeader(http.StatusOK)
	return nil
}
