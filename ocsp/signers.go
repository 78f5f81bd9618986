package ocsp

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Signers looks up private keys in the node's HSM. The node passes its
// *hsm.HSM.
type Signers interface {
	// Signer returns the signer of the key named keyID: a CA key
	// (fsm.CA.KeyID) or a designated responder key (fsm.OCSPResponder.KeyID).
	// The Responder calls it from request goroutines and its Run goroutine,
	// concurrently, the first time it signs with a key and again after a
	// signature fails.
	Signer(keyID string) (crypto.Signer, error)
}

// errKeyUnavailable marks a CA key that this node's HSM cannot provide, such
// as before key distribution reached the node. Such requests get tryLater.
var errKeyUnavailable = errors.New("CA key unavailable")

// missingKeyRetry is how long a key found missing is not looked up again.
// A designated responder key reaches a node's HSM seconds after the
// certificate is committed, and until then each response would cost an HSM
// search.
const missingKeyRetry = 5 * time.Second

// publicKeyEqualer is implemented by every public key type of crypto/*.
type publicKeyEqualer interface {
	Equal(crypto.PublicKey) bool
}

// signerCache keeps the signer of each key once it was found to match its
// certificate, and remembers keys found missing for missingKeyRetry.
type signerCache struct {
	signers Signers
	now     func() time.Time

	mu      sync.Mutex
	byKey   map[string]crypto.Signer
	missing map[string]time.Time // key ID → time of the failed lookup
}

func newSignerCache(signers Signers) *signerCache {
	return &signerCache{
		signers: signers, now: time.Now,
		byKey: make(map[string]crypto.Signer), missing: make(map[string]time.Time),
	}
}

// get returns the signer of keyID after checking that it holds the key of
// cert. The error wraps errKeyUnavailable when the HSM lacks the key.
func (c *signerCache) get(keyID string, cert *x509.Certificate) (crypto.Signer, error) {
	c.mu.Lock()
	s, ok := c.byKey[keyID]
	failedAt, missing := c.missing[keyID]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	if missing && c.now().Sub(failedAt) < missingKeyRetry {
		return nil, fmt.Errorf("%w: key %s was missing at %s", errKeyUnavailable, keyID,
			failedAt.Format(time.RFC3339))
	}
	s, err := c.signers.Signer(keyID)
	if err != nil {
		c.mu.Lock()
		c.missing[keyID] = c.now()
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: find key %s: %w", errKeyUnavailable, keyID, err)
	}
	pub, ok := s.Public().(publicKeyEqualer)
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("key %s does not match the certificate of %s", keyID, cert.Subject)
	}
	c.mu.Lock()
	c.byKey[keyID] = s
	delete(c.missing, keyID)
	c.mu.Unlock()
	return s, nil
}

// forget drops a signer after it failed, so that the next request looks the
// key up again.
func (c *signerCache) forget(keyID string) {
	c.mu.Lock()
	delete(c.byKey, keyID)
	c.mu.Unlock()
}
