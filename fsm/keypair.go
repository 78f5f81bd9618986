package fsm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"
)

const bucketKeyPairs = "key_pairs"

// KeyPair is the public half of a certificate's key pair. HSMKeyID names
// the private half in the nodes' HSMs (a Key record) only where the CA
// generated it, which today means CA keys. Leaf keys of ACME clients stay
// with the clients, so their records hold only the public key.
type KeyPair struct {
	ID        string    `json:"id"`             // KeyPairID of PublicKey
	PublicKey []byte    `json:"public_key"`     // PKIX SubjectPublicKeyInfo, DER
	Type      string    `json:"type,omitempty"` // see KeyType
	HSMKeyID  string    `json:"hsm_key_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// KeyPairID returns the identifier of a key pair: the SHA-256 of its DER
// SubjectPublicKeyInfo, in hex.
func KeyPairID(spki []byte) string {
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:])
}

// KeyType names a public key as policies list it: "ecdsa-p256",
// "ecdsa-p384", "rsa-N" for an N-bit modulus, or "ed25519". Other keys are
// rejected with CodeInvalidArgument.
func KeyType(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return KeyTypeP256, nil
		case elliptic.P384():
			return KeyTypeP384, nil
		}
		return "", Errorf(CodeInvalidArgument, "unsupported ECDSA curve %s: use P-256 or P-384",
			k.Curve.Params().Name)
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", k.N.BitLen()), nil
	case ed25519.PublicKey:
		return KeyTypeEd25519, nil
	case nil:
		return "", Errorf(CodeInvalidArgument, "unsupported public key algorithm")
	}
	return "", Errorf(CodeInvalidArgument, "unsupported public key type %T", pub)
}

// putKeyPair records the key pair of spki unless it exists. An HSM key ID
// is added to an existing record that lacks one.
func putKeyPair(tx *Tx, spki []byte, hsmKeyID string, now time.Time) (*KeyPair, error) {
	id := KeyPairID(spki)
	var kp KeyPair
	found, err := tx.get(bucketKeyPairs, id, &kp)
	if err != nil {
		return nil, err
	}
	if found && (kp.HSMKeyID != "" || hsmKeyID == "") {
		return &kp, nil
	}
	if !found {
		pub, err := x509.ParsePKIXPublicKey(spki)
		if err != nil {
			return nil, Errorf(CodeInvalidArgument, "invalid public key: %v", err)
		}
		// The CA checked the key type before signing; a type this build
		// cannot name is stored without one rather than rejected.
		typ, _ := KeyType(pub)
		kp = KeyPair{ID: id, PublicKey: spki, Type: typ, CreatedAt: now}
	}
	kp.HSMKeyID = hsmKeyID
	return &kp, tx.put(bucketKeyPairs, id, kp)
}

// KeyPair returns a key pair record by its ID (see KeyPairID).
func (t *Tx) KeyPair(id string) (*KeyPair, error) {
	var kp KeyPair
	ok, err := t.get(bucketKeyPairs, id, &kp)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "key pair %s not found", id)
	}
	return &kp, nil
}
