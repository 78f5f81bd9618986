package acme

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"anchor/fsm"
)

// renewalInfoRetryAfter is how long clients should wait before asking for
// renewal information again, in seconds.
const renewalInfoRetryAfter = 6 * 60 * 60

type renewalInfoJSON struct {
	SuggestedWindow suggestedWindow `json:"suggestedWindow"`
}

type suggestedWindow struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// handleRenewalInfo suggests when to renew a certificate (RFC 9773): in
// the last third of its lifetime, or at once when it was revoked.
func (s *Server) handleRenewalInfo(w http.ResponseWriter, r *http.Request, c *call) error {
	cred, _, err := s.certByARIID(c, r.PathValue("id"))
	if err != nil {
		return err
	}
	start, end := renewalWindow(cred)
	w.Header().Set("Retry-After", itoa(renewalInfoRetryAfter))
	writeJSON(w, http.StatusOK, renewalInfoJSON{
		SuggestedWindow: suggestedWindow{Start: formatTime(start), End: formatTime(end)},
	})
	return nil
}

func renewalWindow(cred *fsm.Credential) (time.Time, time.Time) {
	if cred.Revoked {
		return cred.RevokedAt.Add(-time.Hour), cred.RevokedAt
	}
	lifetime := cred.NotAfter.Sub(cred.NotBefore)
	start := cred.NotBefore.Add(lifetime * 2 / 3)
	return start, start.Add(lifetime / 6)
}

// certByARIID finds the credential named by an RFC 9773 certificate ID,
// base64url(authorityKeyIdentifier) "." base64url(serial DER content), and
// returns it with its certificate names.
func (s *Server) certByARIID(c *call, id string) (*fsm.Credential, []string, error) {
	akiText, serialText, ok := strings.Cut(id, ".")
	aki, err1 := base64.RawURLEncoding.DecodeString(akiText)
	serialBytes, err2 := base64.RawURLEncoding.DecodeString(serialText)
	if !ok || err1 != nil || err2 != nil || len(aki) == 0 || len(serialBytes) == 0 {
		return nil, nil, malformed("certificate ID %q is not base64url(AKI).base64url(serial)", id)
	}
	serial := new(big.Int).SetBytes(serialBytes)
	var cred *fsm.Credential
	var names []string
	err := s.state.View(func(tx *fsm.Tx) error {
		var err error
		cred, err = tx.Credential(fsm.SerialKey(serial))
		if err != nil {
			return notFound("no certificate with serial %s", fsm.SerialKey(serial))
		}
		cert, err := x509.ParseCertificate(cred.DER)
		if err != nil {
			return err
		}
		issuer, err := tx.CA(cred.CAID)
		if err != nil {
			return err
		}
		if issuer.ChainID != c.chainID || !bytes.Equal(cert.AuthorityKeyId, aki) {
			return notFound("certificate ID %q is not a certificate of this directory", id)
		}
		names = certNames(cert)
		return nil
	})
	return cred, names, err
}

func certNames(cert *x509.Certificate) []string {
	var names []string
	for _, n := range cert.DNSNames {
		names = append(names, strings.ToLower(n))
	}
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// checkReplaces validates a newOrder "replaces" field (RFC 9773) and
// returns the serial of the replaced certificate, or "" when there is none.
func (s *Server) checkReplaces(c *call, acct *fsm.ACMEAccount, id string,
	ids []fsm.ACMEIdentifier) (string, error) {
	if id == "" {
		return "", nil
	}
	cred, names, err := s.certByARIID(c, id)
	if fsm.IsNotFound(err) {
		return "", malformed("\"replaces\" names no certificate of this directory")
	}
	if err != nil {
		return "", err
	}
	var successor *fsm.ACMEOrder
	err = s.state.View(func(tx *fsm.Tx) error {
		if err := checkCredentialOwner(tx, cred, acct); err != nil {
			return err
		}
		if next := tx.ACMEReplacingOrder(cred.Serial); next != "" {
			successor, _ = tx.ACMEOrder(next)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if successor != nil && successor.Status != fsm.ACMEStatusInvalid {
		return "", newProblem(probAlreadyReplaced, http.StatusConflict,
			"certificate %s is already replaced by another order", cred.Serial)
	}
	if !sharesIdentifier(names, ids) {
		return "", malformed("the order shares no identifier with the replaced certificate")
	}
	return cred.Serial, nil
}

func sharesIdentifier(names []string, ids []fsm.ACMEIdentifier) bool {
	for _, id := range ids {
		if slices.Contains(names, id.Value) {
			return true
		}
	}
	return false
}
