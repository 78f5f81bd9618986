package acme

import (
	"encoding/pem"
	"net/http"

	"anchor/fsm"
)

// handleCertificate returns an issued certificate with its SubCA as a PEM
// chain (RFC 8555, 7.4.2) to the account that ordered it.
func (s *Server) handleCertificate(w http.ResponseWriter, r *http.Request, c *call) error {
	sr, err := s.readSigned(w, r, c, byKID)
	if err != nil {
		return err
	}
	if !sr.postAsGet() {
		return malformed("certificates are read with POST-as-GET (empty payload)")
	}
	var chain []byte
	err = s.state.View(func(tx *fsm.Tx) error {
		cred, err := tx.Credential(r.PathValue("id"))
		if err != nil {
			return err
		}
		if err := checkCredentialOwner(tx, cred, sr.account); err != nil {
			return err
		}
		issuer, err := tx.CA(cred.CAID)
		if err != nil {
			return err
		}
		chain = pemChain(cred.DER, issuer.CertDER)
		return nil
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(chain)
	return nil
}

// checkCredentialOwner requires the credential to come from an order of
// acct.
func checkCredentialOwner(tx *fsm.Tx, cred *fsm.Credential, acct *fsm.ACMEAccount) error {
	if cred.OrderID == "" {
		return unauthorized("certificate %s was not ordered through ACME", cred.Serial)
	}
	o, err := tx.ACMEOrder(cred.OrderID)
	if err != nil {
		return err
	}
	if o.AccountID != acct.ID {
		return unauthorized("certificate %s belongs to another account", cred.Serial)
	}
	return nil
}

func pemChain(ders ...[]byte) []byte {
	var out []byte
	for _, der := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return out
}
