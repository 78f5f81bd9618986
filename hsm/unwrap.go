package hsm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// UnwrapKey imports a CA key that another node exported with WrapKey to this token's
// transport key. The token decrypts transportKey with the transport private key and
// unwraps wrappedKey with the result. It stores the private key as a sensitive token
// object that can only be signed with or wrapped again, so this node can pass it on. It
// also creates the public key object from pub, which crypto11 needs to find the pair.
//
// Before returning, UnwrapKey signs a test digest and verifies it with pub. On a
// mismatch it deletes the imported objects and returns an error. If the token already
// holds id with the same public key, UnwrapKey returns its Signer. With a different
// public key, the error wraps ErrKeyExists. On a shared token it wraps ErrShared.
//
// NOTE: SoftHSM2 2.6.1 fails to unwrap Ed25519 private keys (CKR_FUNCTION_FAILED), so
// there an Ed25519 key cannot be received even from a token that can wrap it.
func (h *HSM) UnwrapKey(id string, alg Algorithm, pub crypto.PublicKey,
	transportKey, wrappedKey []byte) (crypto.Signer, error) {
	if h.cfg.Shared {
		return nil, fmt.Errorf("%w: unwrap key %q", ErrShared, id)
	}
	spec, err := lookupAlgorithm(alg)
	if err != nil {
		return nil, err
	}
	if err := spec.checkPublicKey(pub); err != nil {
		return nil, err
	}
	if err := validateKeyID(id); err != nil {
		return nil, err
	}
	if len(transportKey) == 0 || len(wrappedKey) == 0 {
		return nil, errors.New("hsm: unwrap key: transport key or wrapped key is empty")
	}

	h.objectsMu.Lock()
	defer h.objectsMu.Unlock()

	if existing, err := h.existingKey(id, pub); existing != nil || err != nil {
		return existing, err
	}
	objectWriteMu.Lock()
	err = h.withRawSession("unwrap key", func(s rawSession) error {
		return s.unwrapKey(h, id, spec, pub, transportKey, wrappedKey)
	})
	objectWriteMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("hsm: unwrap key %q on token %q: %w", id, h.cfg.TokenLabel, err)
	}
	return h.checkUnwrappedKey(id, alg, pub)
}

// existingKey returns the Signer for id if the token already holds it with public key
// pub, an error if it holds a different key, and nil, nil if id is free.
func (h *HSM) existingKey(id string, pub crypto.PublicKey) (crypto.Signer, error) {
	signer, err := h.Signer(id)
	if errors.Is(err, ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(signer.Public(), pub) {
		return nil, fmt.Errorf("%w: token %q contains key %q with a different public key",
			ErrKeyExists, h.cfg.TokenLabel, id)
	}
	h.logger.Info("hsm unwrap skipped, key already present", "key_id", id)
	return signer, nil
}

func (s rawSession) unwrapKey(h *HSM, id string, spec keySpec, pub crypto.PublicKey,
	transportKey, wrappedKey []byte) error {
	if err := s.checkIDFree(id); err != nil {
		return err
	}
	sessionKey, err := s.unwrapSessionKey(transportKey)
	if err != nil {
		return err
	}
	defer s.destroy(h, sessionKey, "session key")

	private, err := s.ctx.UnwrapKey(s.handle, aesKeyWrapPadMechanism(), sessionKey, wrappedKey,
		caPrivateKeyTemplate(id, spec))
	if err != nil {
		return fmt.Errorf("unwrap private key with AES key wrap (corrupt wrapped key?): %w", err)
	}

	publicTemplate, err := caPublicKeyObjectTemplate(id, spec, pub)
	if err == nil {
		_, err = s.ctx.CreateObject(s.handle, publicTemplate)
	}
	if err != nil {
		s.destroy(h, private, "unwrapped private key")
		return fmt.Errorf("create public key object: %w", err)
	}
	return nil
}

// unwrapSessionKey decrypts the AES-256 session key with the transport private key.
//
// NOTE: the key size is not checked. SoftHSM2 2.6.1 reports CKA_VALUE_LEN 0 for unwrapped
// secret keys and rejects CKA_VALUE_LEN in the unwrap template, so an AES-128 or AES-192
// session key from a sender would be accepted.
func (s rawSession) unwrapSessionKey(transportKey []byte) (pkcs11.ObjectHandle, error) {
	transport, found, err := s.findObject(pkcs11.CKO_PRIVATE_KEY, TransportKeyID)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("%w: no transport key: call TransportPublicKey on this node and "+
			"wrap to the key it returns", ErrKeyNotFound)
	}

	sessionKey, err := s.ctx.UnwrapKey(s.handle, oaepMechanism(), transport, transportKey,
		sessionKeyTemplate(true))
	if err != nil {
		return 0, fmt.Errorf("decrypt session key with the transport key "+
			"(wrapped to another node's transport key?): %w", err)
	}

	return sessionKey, nil
}

// checkUnwrappedKey proves that the imported private key belongs to pub by signing a
// random digest. It deletes the key if not.
func (h *HSM) checkUnwrappedKey(id string, alg Algorithm, pub crypto.PublicKey) (
	crypto.Signer, error) {
	signer, err := h.Signer(id)
	if err == nil {
		err = verifyKeyPair(signer, pub)
	}
	if err != nil {
		h.destroyKey(id)
		return nil, fmt.Errorf("hsm: unwrap key %q on token %q: %w", id, h.cfg.TokenLabel, err)
	}
	h.logger.Info("hsm unwrapped key", "key_id", id, "algorithm", alg)
	return signer, nil
}

func verifyKeyPair(signer crypto.Signer, pub crypto.PublicKey) error {
	digest := make([]byte, sha256.Size)
	if _, err := rand.Read(digest); err != nil {
		return fmt.Errorf("read random digest: %w", err)
	}
	var opts crypto.SignerOpts = crypto.SHA256
	if _, ok := pub.(ed25519.PublicKey); ok {
		opts = crypto.Hash(0) // Ed25519 signs the random bytes as the message
	}
	signature, err := signer.Sign(nil, digest, opts)
	if err != nil {
		return fmt.Errorf("test signature: %w", err)
	}

	valid := false
	switch key := pub.(type) {
	case *ecdsa.PublicKey:
		valid = ecdsa.VerifyASN1(key, digest, signature)
	case *rsa.PublicKey:
		valid = rsa.VerifyPKCS1v15(key, crypto.SHA256, digest, signature) == nil
	case ed25519.PublicKey:
		valid = ed25519.Verify(key, digest, signature)
	}
	if !valid {
		return errors.New("the unwrapped private key does not match the given public key")
	}
	return nil
}
