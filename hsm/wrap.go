package hsm

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"

	"github.com/miekg/pkcs11"
)

// sessionKeyBytes is the size of the ephemeral AES key that wraps a CA key (AES-256).
const sessionKeyBytes = 32

// oaepMechanism returns RSA-OAEP with SHA-1 and MGF1-SHA-1 and an empty label.
// SoftHSM2 2.6.1 rejects any other hash and any label with CKR_ARGUMENTS_BAD. SHA-1
// collisions do not weaken OAEP, and RFC 8017 keeps SHA-1 as OAEP's default hash.
func oaepMechanism() []*pkcs11.Mechanism {
	params := pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1,
		pkcs11.CKZ_DATA_SPECIFIED, nil)
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, params)}
}

// aesKeyWrapPadMechanism returns AES key wrap with padding (RFC 5649).
func aesKeyWrapPadMechanism() []*pkcs11.Mechanism {
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}
}

// WrapKey exports the private key id for the node whose transport public key is
// recipient, without the key appearing in plaintext outside the token. The token
// generates an ephemeral AES-256 key and wraps the private key with it
// (CKM_AES_KEY_WRAP_PAD, RFC 5649). It then wraps the AES key to recipient with
// RSA-OAEP (SHA-1, see oaepMechanism). The recipient passes both outputs to UnwrapKey.
// The error wraps ErrKeyNotFound when the token has no private key id,
// ErrKeyNotWrappable when the token refuses to wrap the key (SoftHSM2 2.6.1 refuses
// Ed25519 keys), and ErrShared on a shared token.
func (h *HSM) WrapKey(id string, recipient *rsa.PublicKey) (
	transportKey, wrappedKey []byte, err error) {
	if h.cfg.Shared {
		return nil, nil, fmt.Errorf("%w: wrap key %q", ErrShared, id)
	}
	if err := validateKeyID(id); err != nil {
		return nil, nil, err
	}
	if err := checkRecipient(recipient); err != nil {
		return nil, nil, err
	}

	objectWriteMu.Lock()
	err = h.withRawSession("wrap key", func(s rawSession) error {
		transportKey, wrappedKey, err = s.wrapKey(h, id, recipient)
		return err
	})
	objectWriteMu.Unlock()
	if err != nil {
		return nil, nil, fmt.Errorf("hsm: wrap key %q on token %q: %w", id, h.cfg.TokenLabel, err)
	}
	h.logger.Info("hsm wrapped key for transfer", "key_id", id,
		"recipient", publicKeyFingerprint(recipient))
	return transportKey, wrappedKey, nil
}

func (s rawSession) wrapKey(h *HSM, id string, recipient *rsa.PublicKey) (
	transportKey, wrappedKey []byte, err error) {
	private, found, err := s.findObject(pkcs11.CKO_PRIVATE_KEY, id)
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, fmt.Errorf("%w: no private key with id %q", ErrKeyNotFound, id)
	}

	recipientKey, err := s.ctx.CreateObject(s.handle, recipientKeyTemplate(recipient))
	if err != nil {
		return nil, nil, fmt.Errorf("import recipient public key: %w", err)
	}
	defer s.destroy(h, recipientKey, "recipient public key")

	sessionKey, err := s.ctx.GenerateKey(s.handle,
		[]*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)},
		sessionKeyTemplate(false))
	if err != nil {
		return nil, nil, fmt.Errorf("generate AES-256 session key: %w", err)
	}
	defer s.destroy(h, sessionKey, "session key")

	wrappedKey, err = s.ctx.WrapKey(s.handle, aesKeyWrapPadMechanism(), sessionKey, private)
	if isPKCS11Error(err, pkcs11.CKR_KEY_NOT_WRAPPABLE) {
		return nil, nil, fmt.Errorf("%w: C_WrapKey: %w", ErrKeyNotWrappable, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("wrap private key with AES key wrap: %w", err)
	}
	transportKey, err = s.ctx.WrapKey(s.handle, oaepMechanism(), recipientKey, sessionKey)
	if err != nil {
		return nil, nil, fmt.Errorf("wrap session key with RSA-OAEP: %w", err)
	}
	return transportKey, wrappedKey, nil
}

func checkRecipient(recipient *rsa.PublicKey) error {
	if recipient == nil || recipient.N == nil {
		return fmt.Errorf("hsm: recipient transport key is missing")
	}
	if bits := recipient.N.BitLen(); bits < minRecipientBits {
		return fmt.Errorf("hsm: recipient transport key has %d bits, at least %d required",
			bits, minRecipientBits)
	}
	return nil
}

// publicKeyFingerprint returns the hex SHA-256 of the PKIX encoding of pub, for logs.
func publicKeyFingerprint(pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "unknown"
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
