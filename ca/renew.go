package ca

import (
	"context"
	"crypto/x509"

	"anchor/fsm"
)

// reasonKeyCompromise is the CRLReason keyCompromise (RFC 5280, 5.3.1).
const reasonKeyCompromise = 1

// Renew issues a new credential of a certificate: the stored public key,
// names and common name, under the same SubCA and its current policy, for
// a new validity period. The CA never holds the private keys of ACME
// leaves, so renewal re-signs the public key without a new CSR. A
// certificate with a credential revoked for key compromise is not renewed.
func (i *Issuer) Renew(ctx context.Context, certificateID string) (*Issued, error) {
	// 1. Load the certificate, its newest credential and its SubCA.
	var target *issuing
	var latest *fsm.Credential
	err := i.state.View(func(tx *fsm.Tx) error {
		var err error
		target, latest, err = loadRenewal(tx, certificateID)
		return err
	})
	if err != nil {
		return nil, err
	}

	// 2. Rebuild the leaf request from the stored key and names.
	c := target.certificate
	pub, err := x509.ParsePKIXPublicKey(c.PublicKey)
	if err != nil {
		return nil, fsm.Errorf(fsm.CodeInternal,
			"certificate %s has an unreadable public key: %v", c.ID, err)
	}
	prev, err := x509.ParseCertificate(latest.DER)
	if err != nil {
		return nil, fsm.Errorf(fsm.CodeInternal, "credential %s is unreadable: %v", latest.Serial, err)
	}
	leaf := &leafRequest{
		publicKey: pub, spki: c.PublicKey, names: c.Names, commonName: prev.Subject.CommonName,
	}

	// 3. Check, sign and commit as a new credential of the certificate.
	issued, err := i.issueLeaf(ctx, target, leaf, "", "")
	if err != nil {
		return nil, err
	}
	i.logger.Info("certificate renewed", "certificate", c.ID, "serial", issued.Credential.Serial,
		"previous_serial", latest.Serial)
	return issued, nil
}

func loadRenewal(tx *fsm.Tx, certificateID string) (*issuing, *fsm.Credential, error) {
	c, err := tx.Certificate(certificateID)
	if err != nil {
		return nil, nil, err
	}

	creds, err := tx.Credentials(certificateID)
	if err != nil {
		return nil, nil, err
	}
	if len(creds) == 0 {
		return nil, nil, fsm.Errorf(fsm.CodeNotFound, "certificate %s has no credential", certificateID)
	}
	for _, cred := range creds {
		if cred.Revoked && cred.Reason == reasonKeyCompromise {
			return nil, nil, fsm.Errorf(fsm.CodeFailedPrecondition,
				"certificate %s cannot be renewed: credential %s was revoked for key compromise; "+
					"reissue it with a new key", certificateID, cred.Serial)
		}
	}

	chain, err := tx.Chain(c.ChainID)
	if err != nil {
		return nil, nil, err
	}
	t := &issuing{chain: chain, certificate: c}
	if c.ServiceID != "" {
		if t.service, err = tx.Service(c.ServiceID); err != nil {
			return nil, nil, err
		}
	}
	if err := t.loadSubCA(tx, c.CAID); err != nil {
		return nil, nil, err
	}
	return t, &creds[len(creds)-1], nil
}
