package ocsp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"

	"anchor/fsm"
)

// oidOCSPNoCheck is id-pkix-ocsp-nocheck (RFC 6960, 4.2.2.2.1): clients do
// not check the revocation status of a responder certificate that has it,
// which its short validity makes safe.
var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// maxCommonName is the upper bound of X520CommonName (RFC 5280, appendix A).
const maxCommonName = 64

// designate issues and commits a new responder certificate of ca. The steps
// stay in one function so that the order reads top to bottom: the key is
// recorded before the certificate that names it.
func (d *Designator) designate(ctx context.Context, ca *fsm.CA) error {
	// 1. The SubCA key, which signs the certificate.
	caCert, err := ca.Certificate()
	if err != nil {
		return err
	}
	caSigner, err := d.keys.Signer(ca.KeyID)
	if err != nil {
		return fmt.Errorf("find key %s of CA %s: %w", ca.KeyID, ca.ID, err)
	}
	if pub, ok := caSigner.Public().(publicKeyEqualer); !ok || !pub.Equal(caCert.PublicKey) {
		return fmt.Errorf("key %s does not match the certificate of CA %s", ca.KeyID, ca.ID)
	}

	// 2. A new responder key in this node's HSM, recorded for distribution.
	keyID, signer, err := d.newKey(ctx)
	if err != nil {
		return err
	}

	// 3. The certificate, signed in the HSM and committed.
	tmpl, err := responderTemplate(caCert, d.now().UTC().Truncate(time.Second), d.opts.Validity)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, signer.Public(), caSigner)
	if err != nil {
		return fmt.Errorf("sign responder certificate of CA %s: %w", ca.ID, err)
	}
	cmd := fsm.MustCommand(fsm.CmdPublishOCSPResponder, fsm.OCSPResponder{
		CAID: ca.ID, KeyID: keyID, CertDER: der,
	})
	if err := applyDecode(ctx, d.apply, cmd); err != nil {
		return fmt.Errorf("commit responder certificate of CA %s: %w", ca.ID, err)
	}
	d.logger.Info("ocsp responder certificate issued", "ca", ca.ID, "key", keyID,
		"serial", tmpl.SerialNumber.Text(16), "not_after", tmpl.NotAfter)
	return nil
}

// newKey generates a responder key and records its public half with
// fsm.CmdCreateKey.
func (d *Designator) newKey(ctx context.Context) (string, crypto.Signer, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("read key ID randomness: %w", err)
	}
	keyID := fsm.ResponderKeyPrefix + hex.EncodeToString(b[:])
	signer, err := d.keys.GenerateKey(keyID, d.opts.Algorithm)
	if err != nil {
		return "", nil, fmt.Errorf("generate responder key %s: %w", keyID, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return "", nil, fmt.Errorf("encode public key of %s: %w", keyID, err)
	}
	cmd := fsm.MustCommand(fsm.CmdCreateKey, fsm.Key{
		ID: keyID, Algorithm: string(d.opts.Algorithm), PublicKey: pub, Origin: d.opts.NodeID,
	})
	if err := applyDecode(ctx, d.apply, cmd); err != nil {
		return "", nil, fmt.Errorf("record responder key %s: %w", keyID, err)
	}
	return keyID, signer, nil
}

// responderTemplate is a designated responder certificate valid from a
// minute before now for validity, ending no later than the CA certificate.
func responderTemplate(
	caCert *x509.Certificate,
	now time.Time,
	validity time.Duration,
) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	cn := caCert.Subject.CommonName + " OCSP Responder"
	if len(cn) > maxCommonName {
		cn = cn[:maxCommonName]
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: caCert.Subject.Organization, CommonName: cn},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{{Id: oidOCSPNoCheck, Value: asn1.NullBytes}},
	}, nil
}

// newSerial returns a positive serial of at most 127 bits.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 127), big.NewInt(1))
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("read serial randomness: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// applyDecode commits cmd and returns the handler's error, if any.
func applyDecode(ctx context.Context, apply Applier, cmd *fsm.Command) error {
	res, err := apply.Apply(ctx, cmd)
	if err != nil {
		return err
	}
	return res.Decode(nil)
}
