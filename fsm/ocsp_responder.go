package fsm

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"slices"
	"time"
)

// bucketOCSPResponders maps a CA's ID to its designated OCSP responders,
// newest first.
const bucketOCSPResponders = "ocsp_responders"

// CmdPublishOCSPResponder records a new designated OCSP responder
// certificate of a CA (RFC 6960, 4.2.2.2).
const CmdPublishOCSPResponder CommandType = "ocsp.responder.publish"

// keptOCSPResponders is how many responder certificates a CA keeps: the
// newest, and the one before it for nodes that lack the newest key yet.
const keptOCSPResponders = 2

// oidOCSPNoCheck is id-pkix-ocsp-nocheck (RFC 6960, 4.2.2.2.1).
var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// OCSPResponder is a designated responder certificate of a CA and the HSM
// key that signs with it. It is both the payload of CmdPublishOCSPResponder
// and the stored record.
type OCSPResponder struct {
	CAID string `json:"ca_id"`
	// KeyID names the responder key in the nodes' HSMs. It is a Key record,
	// distributed to every node like a CA key.
	KeyID       string    `json:"key_id"`
	CertDER     []byte    `json:"cert_der"`
	NotAfter    time.Time `json:"not_after"`
	PublishedAt time.Time `json:"published_at"`
}

// Certificate parses the responder certificate.
func (r *OCSPResponder) Certificate() (*x509.Certificate, error) {
	return x509.ParseCertificate(r.CertDER)
}

func init() {
	register(CmdPublishOCSPResponder, applyPublishOCSPResponder)
}

func applyPublishOCSPResponder(tx *Tx, cmd *Command) (any, error) {
	var p OCSPResponder
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	ca, err := tx.CA(p.CAID)
	if err != nil {
		return nil, err
	}
	cert, err := checkResponderCert(tx, ca, &p)
	if err != nil {
		return nil, err
	}
	stored, err := tx.OCSPResponders(p.CAID)
	if err != nil {
		return nil, err
	}
	if len(stored) > 0 && !cert.NotAfter.After(stored[0].NotAfter) {
		return nil, Errorf(CodeFailedPrecondition,
			"responder certificate of CA %q expires at %s, not after the current one (%s)",
			p.CAID, cert.NotAfter, stored[0].NotAfter)
	}
	p.NotAfter = cert.NotAfter.UTC()
	p.PublishedAt = cmd.Time
	stored = slices.Insert(stored, 0, p)
	if len(stored) > keptOCSPResponders {
		stored = stored[:keptOCSPResponders]
	}
	return p, tx.put(bucketOCSPResponders, p.CAID, stored)
}

// checkResponderCert verifies that the certificate is a responder
// certificate that ca signed for the recorded key KeyID.
func checkResponderCert(tx *Tx, ca *CA, p *OCSPResponder) (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(p.CertDER)
	if err != nil {
		return nil, Errorf(CodeInvalidArgument, "responder certificate of CA %q: %v", p.CAID, err)
	}
	caCert, err := ca.Certificate()
	if err != nil {
		return nil, Errorf(CodeInternal, "%v", err)
	}
	if err := cert.CheckSignatureFrom(caCert); err != nil {
		return nil, Errorf(CodeInvalidArgument,
			"responder certificate of CA %q: not signed by the CA: %v", p.CAID, err)
	}
	if !bytes.Equal(cert.RawIssuer, caCert.RawSubject) || cert.IsCA {
		return nil, Errorf(CodeInvalidArgument,
			"responder certificate of CA %q: wrong issuer name or a CA certificate", p.CAID)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) || !hasNoCheck(cert) {
		return nil, Errorf(CodeInvalidArgument,
			"responder certificate of CA %q needs id-kp-OCSPSigning and id-pkix-ocsp-nocheck", p.CAID)
	}
	key, err := tx.Key(p.KeyID)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(key.PublicKey, cert.RawSubjectPublicKeyInfo) {
		return nil, Errorf(CodeInvalidArgument,
			"responder certificate of CA %q does not certify key %q", p.CAID, p.KeyID)
	}
	return cert, nil
}

func hasNoCheck(cert *x509.Certificate) bool {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidOCSPNoCheck) {
			return true
		}
	}
	return false
}

// OCSPResponders returns the designated responders of a CA, newest first,
// or none.
func (t *Tx) OCSPResponders(caID string) ([]OCSPResponder, error) {
	var out []OCSPResponder
	if _, err := t.get(bucketOCSPResponders, caID, &out); err != nil {
		return nil, err
	}
	return out, nil
}
