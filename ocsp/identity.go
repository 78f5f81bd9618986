package ocsp

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"anchor/fsm"
)

// signingIdentity is the key that signs a response and its certificate,
// which names the responder.
type signingIdentity struct {
	keyID  string
	signer crypto.Signer
	cert   *x509.Certificate
}

// responderCerts keeps parsed designated responder certificates by key ID.
// A key ID is certified once, so an entry never changes.
type responderCerts struct {
	mu    sync.Mutex
	byKey map[string]*x509.Certificate
}

func (c *responderCerts) get(d *fsm.OCSPResponder) (*x509.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cert, ok := c.byKey[d.KeyID]; ok {
		return cert, nil
	}
	cert, err := d.Certificate()
	if err != nil {
		return nil, fmt.Errorf("parse responder certificate of CA %s: %w", d.CAID, err)
	}
	if c.byKey == nil {
		c.byKey = make(map[string]*x509.Certificate)
	}
	c.byKey[d.KeyID] = cert
	return cert, nil
}

// identity returns the newest designated responder of the CA whose
// certificate is valid from now until nextUpdate and whose key this node's
// HSM holds. Without one, or with Options.SignWithCAKey, it returns the CA's
// own key.
func (r *Responder) identity(
	found *lookupResult,
	now, nextUpdate time.Time,
) (*signingIdentity, error) {
	if !r.opts.SignWithCAKey {
		for i := range found.responders {
			id, err := r.designated(&found.responders[i], now, nextUpdate)
			if err == nil && id != nil {
				return id, nil
			}
			if err != nil && !errors.Is(err, errKeyUnavailable) {
				r.repeats.Warn(r.logger, "responder "+found.responders[i].KeyID,
					"ocsp designated responder unusable, trying the next",
					"ca", found.iss.ca.ID, "key", found.responders[i].KeyID, "error", err)
			}
		}
	}
	ca, cert := found.iss.ca, found.iss.cert
	signer, err := r.signers.get(ca.KeyID, cert)
	if err != nil {
		return nil, &caError{caID: ca.ID, err: err}
	}
	return &signingIdentity{keyID: ca.KeyID, signer: signer, cert: cert}, nil
}

// designated returns the identity of a designated responder, or nil when
// its certificate does not cover now to nextUpdate.
func (r *Responder) designated(
	d *fsm.OCSPResponder,
	now, nextUpdate time.Time,
) (*signingIdentity, error) {
	cert, err := r.responderCerts.get(d)
	if err != nil {
		return nil, err
	}
	if now.Before(cert.NotBefore) || nextUpdate.After(cert.NotAfter) {
		return nil, nil
	}
	signer, err := r.signers.get(d.KeyID, cert)
	if err != nil {
		return nil, err
	}
	return &signingIdentity{keyID: d.KeyID, signer: signer, cert: cert}, nil
}

// caError is a failure to sign for one CA.
type caError struct {
	caID string
	err  error
}

func (e *caError) Error() string { return "CA " + e.caID + ": " + e.err.Error() }

func (e *caError) Unwrap() error { return e.err }

// caOf returns the ID of the CA that err is about, or "" when it names none.
func caOf(err error) string {
	var e *caError
	if errors.As(err, &e) {
		return e.caID
	}
	return ""
}
