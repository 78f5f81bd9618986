package fsm

import (
	"crypto/x509"
	"time"
)

// bucketCARevocations maps a revoked SubCA's ID to its CARevocation.
const bucketCARevocations = "ca_revocations"

// CmdRevokeSubCA revokes a SubCA certificate. The root's CRL then lists it
// and OCSP for it under the root returns revoked.
const CmdRevokeSubCA CommandType = "subca.revoke"

// RevokeSubCA is the payload of CmdRevokeSubCA.
type RevokeSubCA struct {
	CAID string `json:"ca_id"`
	// Reason is the CRLReason code (RFC 5280, 5.3.1), such as 2 for
	// cACompromise.
	Reason int `json:"reason"`
}

// CARevocation is the revocation of a SubCA certificate.
type CARevocation struct {
	CAID      string    `json:"ca_id"`
	IssuerID  string    `json:"issuer_id"`
	Serial    string    `json:"serial"` // SerialKey form
	RevokedAt time.Time `json:"revoked_at"`
	Reason    int       `json:"reason"`
}

func init() {
	register(CmdRevokeSubCA, applyRevokeSubCA)
}

// validCAReason reports whether a CRLReason code can revoke a CA
// certificate. certificateHold (6) is left out because no command releases
// a hold, removeFromCRL (8) belongs only in delta CRLs, and 7 is unused.
func validCAReason(reason int) bool {
	switch reason {
	case 0, 1, 2, 3, 4, 5, 9, 10:
		return true
	}
	return false
}

func applyRevokeSubCA(tx *Tx, cmd *Command) (any, error) {
	var p RevokeSubCA
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if !validCAReason(p.Reason) {
		return nil, Errorf(CodeInvalidArgument, "invalid reason code %d for a SubCA revocation", p.Reason)
	}
	ca, err := tx.CA(p.CAID)
	if err != nil {
		return nil, err
	}
	if ca.Kind != CAKindSub {
		return nil, Errorf(CodeInvalidArgument, "CA %q is not a SubCA", p.CAID)
	}
	if tx.has(bucketCARevocations, p.CAID) {
		return nil, Errorf(CodeAlreadyExists, "SubCA %q is already revoked", p.CAID)
	}

	cert, err := x509.ParseCertificate(ca.CertDER)
	if err != nil {
		return nil, Errorf(CodeInternal, "SubCA %q: invalid certificate: %v", p.CAID, err)
	}
	rev := CARevocation{
		CAID: p.CAID, IssuerID: ca.IssuerID, Serial: SerialKey(cert.SerialNumber),
		RevokedAt: cmd.Time, Reason: p.Reason,
	}
	err = indexRevocation(tx, ca.IssuerID, &Revocation{
		Serial: cert.SerialNumber, RevokedAt: cmd.Time, Reason: p.Reason,
		NotAfter: cert.NotAfter,
	})
	if err != nil {
		return nil, err
	}
	return rev, tx.put(bucketCARevocations, p.CAID, rev)
}

// CARevocation returns the revocation of a SubCA, or a CodeNotFound error
// when the SubCA is not revoked.
func (t *Tx) CARevocation(caID string) (*CARevocation, error) {
	var r CARevocation
	ok, err := t.get(bucketCARevocations, caID, &r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "CA %q is not revoked", caID)
	}
	return &r, nil
}
