package hsm

import (
	"crypto"
	"errors"
	"fmt"
	"io"

	"github.com/ThalesIgnite/crypto11"
)

// keySigner is the crypto.Signer for one RSA key on the token, through crypto11. It names
// the key by id, so it stays valid when the token is reopened and the object handles
// change.
type keySigner struct {
	h      *HSM
	id     string
	public crypto.PublicKey
}

// Public returns the public key read from the token when the signer was created.
func (s *keySigner) Public() crypto.PublicKey { return s.public }

// Sign signs digest on the token and is safe for concurrent use. rand is ignored
// because the token draws its own randomness. It signs PKCS #1 v1.5 unless opts is an
// *rsa.PSSOptions. PSS needs an explicit salt
// length or rsa.PSSSaltLengthEqualsHash, because crypto11 v1.2.5 rejects
// rsa.PSSSaltLengthAuto.
//
// When the sessions or the login were lost underneath, Sign reopens the token and
// retries once.
func (s *keySigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		opts = crypto.Hash(0)
	}
	var signature []byte
	err := s.h.withContext("sign", s.id, func(ctx *crypto11.Context) error {
		key, err := s.h.findKey(ctx, s.id)
		if err != nil {
			return err
		}
		signature, err = key.Sign(nil, digest, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("hsm: sign with key %q: %w", s.id, err)
	}
	return signature, nil
}

// Signer returns a crypto.Signer for the key pair with CKA_ID id. The error wraps
// ErrKeyNotFound when the token has no such private key with a matching public key.
// Signers are cached, so repeated calls return the same value. RSA keys sign through
// crypto11, ECDSA and Ed25519 keys through the raw session pool (poolSigner).
func (h *HSM) Signer(id string) (crypto.Signer, error) {
	if err := validateKeyID(id); err != nil {
		return nil, err
	}
	h.keysMu.Lock()
	cached, ok := h.signers[id]
	h.keysMu.Unlock()
	if ok {
		return cached, nil
	}

	info, err := h.lookupKey(id)
	if err != nil {
		return nil, err
	}
	var signer crypto.Signer
	if info.public != nil {
		signer = &poolSigner{h: h, id: id, public: info.public}
	} else if signer, err = h.newKeySigner(id); err != nil {
		return nil, err
	}

	h.keysMu.Lock()
	defer h.keysMu.Unlock()
	if cached, ok := h.signers[id]; ok {
		return cached, nil
	}
	h.signers[id] = signer
	return signer, nil
}

// newKeySigner returns the crypto11-backed Signer of an RSA key.
func (h *HSM) newKeySigner(id string) (*keySigner, error) {
	var public crypto.PublicKey
	err := h.withContext("find key", id, func(ctx *crypto11.Context) error {
		key, err := h.findKey(ctx, id)
		if err == nil {
			public = key.Public()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &keySigner{h: h, id: id, public: public}, nil
}

// HasKey reports whether the token holds a key pair with CKA_ID id. It returns false,
// and logs, when the token cannot be searched.
func (h *HSM) HasKey(id string) bool {
	_, err := h.Signer(id)
	if err != nil && !errors.Is(err, ErrKeyNotFound) {
		h.logger.Warn("hsm key lookup failed", "key_id", id, "err", err)
	}
	return err == nil
}

// findKey returns the crypto11 key for id, from the cache or from the token. The caller
// holds h.mu for reading, so ctx stays current.
func (h *HSM) findKey(ctx *crypto11.Context, id string) (crypto11.Signer, error) {
	h.keysMu.Lock()
	key, ok := h.keys[id]
	h.keysMu.Unlock()
	if ok {
		return key, nil
	}

	key, err := ctx.FindKeyPair([]byte(id), []byte(id))
	if err != nil {
		return nil, fmt.Errorf("hsm: find key %q: %w", id, err)
	}
	if key == nil {
		return nil, fmt.Errorf("%w: id %q on token %q", ErrKeyNotFound, id, h.cfg.TokenLabel)
	}

	h.keysMu.Lock()
	h.keys[id] = key
	h.keysMu.Unlock()
	return key, nil
}

// clearKeyCache drops the cached object handles, which belong to the old context.
func (h *HSM) clearKeyCache() {
	h.keysMu.Lock()
	clear(h.keys)
	clear(h.handles)
	h.keysMu.Unlock()
}

// forgetKey drops every cached value for id, after its objects were destroyed.
func (h *HSM) forgetKey(id string) {
	h.keysMu.Lock()
	delete(h.keys, id)
	delete(h.handles, id)
	delete(h.signers, id)
	h.keysMu.Unlock()
}

// validateKeyID rejects ids that cannot name a CA key.
func validateKeyID(id string) error {
	if id == "" {
		return errors.New("hsm: key id is empty")
	}
	if id == TransportKeyID {
		return fmt.Errorf("hsm: key id %q is reserved for the transport key", id)
	}
	return nil
}
