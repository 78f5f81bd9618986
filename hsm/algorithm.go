package hsm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Algorithm names a CA key type and size.
type Algorithm string

// Supported algorithms.
const (
	ECDSAP256 Algorithm = "ecdsa-p256"
	ECDSAP384 Algorithm = "ecdsa-p384"
	RSA2048   Algorithm = "rsa-2048"
	RSA3072   Algorithm = "rsa-3072"
	RSA4096   Algorithm = "rsa-4096"
	// Ed25519 is EdDSA on edwards25519 (RFC 8032, pure Ed25519 only). The token must
	// support CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA (PKCS#11 v3.0). SoftHSM2 2.6.1
	// generates and signs with such keys but can neither wrap nor unwrap them, so on
	// that token an Ed25519 key stays on the node that generated it (see WrapKey).
	Ed25519 Algorithm = "ed25519"
)

// PKCS#11 v3.0 values for EdDSA, which github.com/miekg/pkcs11 v1.1.2 does not define.
const (
	ckkECEdwards           = 0x00000040 // CKK_EC_EDWARDS
	ckmECEdwardsKeyPairGen = 0x00001055 // CKM_EC_EDWARDS_KEY_PAIR_GEN
	ckmEdDSA               = 0x00001057 // CKM_EDDSA
)

// rsaPublicExponent is the public exponent of generated RSA keys (65537).
var rsaPublicExponent = []byte{0x01, 0x00, 0x01}

// keySpec is the PKCS#11 description of an Algorithm.
type keySpec struct {
	alg     Algorithm
	keyType uint           // CKK_EC, CKK_EC_EDWARDS or CKK_RSA
	curve   elliptic.Curve // nil for RSA and Ed25519
	curveID asn1.ObjectIdentifier
	bits    int // RSA modulus size, 0 for EC and Ed25519
}

var keySpecs = map[Algorithm]keySpec{
	ECDSAP256: {alg: ECDSAP256, keyType: pkcs11.CKK_EC, curve: elliptic.P256(),
		curveID: asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}},
	ECDSAP384: {alg: ECDSAP384, keyType: pkcs11.CKK_EC, curve: elliptic.P384(),
		curveID: asn1.ObjectIdentifier{1, 3, 132, 0, 34}},
	RSA2048: {alg: RSA2048, keyType: pkcs11.CKK_RSA, bits: 2048},
	RSA3072: {alg: RSA3072, keyType: pkcs11.CKK_RSA, bits: 3072},
	RSA4096: {alg: RSA4096, keyType: pkcs11.CKK_RSA, bits: 4096},
	// CKA_EC_PARAMS names the curve by its RFC 8410 OID, id-Ed25519. SoftHSM2 2.6.1
	// also accepts the printable string "edwards25519" that PKCS#11 v3.0 allows.
	Ed25519: {alg: Ed25519, keyType: ckkECEdwards,
		curveID: asn1.ObjectIdentifier{1, 3, 101, 112}},
}

func lookupAlgorithm(alg Algorithm) (keySpec, error) {
	spec, ok := keySpecs[alg]
	if !ok {
		return keySpec{}, fmt.Errorf("hsm: unsupported algorithm %q: use one of %s, %s, %s, %s, "+
			"%s, %s", alg, ECDSAP256, ECDSAP384, RSA2048, RSA3072, RSA4096, Ed25519)
	}
	return spec, nil
}

// checkPublicKey returns an error unless pub is a key of this algorithm.
func (s keySpec) checkPublicKey(pub crypto.PublicKey) error {
	switch key := pub.(type) {
	case *ecdsa.PublicKey:
		if s.curve == nil || key.Curve != s.curve {
			return fmt.Errorf("hsm: public key is ECDSA %s, not %s",
				key.Curve.Params().Name, s.alg)
		}
	case *rsa.PublicKey:
		if s.bits == 0 || key.N.BitLen() != s.bits {
			return fmt.Errorf("hsm: public key is RSA with %d bits, not %s", key.N.BitLen(), s.alg)
		}
	case ed25519.PublicKey:
		if s.keyType != ckkECEdwards {
			return fmt.Errorf("hsm: public key is Ed25519, not %s", s.alg)
		}
		if len(key) != ed25519.PublicKeySize {
			return fmt.Errorf("hsm: Ed25519 public key has %d bytes, want %d",
				len(key), ed25519.PublicKeySize)
		}
	default:
		return fmt.Errorf("hsm: public key type %T is not supported", pub)
	}
	return nil
}

// ecParams returns CKA_EC_PARAMS: the DER-encoded OID of the named curve, for ECDSA
// and Ed25519 keys.
func (s keySpec) ecParams() ([]byte, error) {
	params, err := asn1.Marshal(s.curveID)
	if err != nil {
		return nil, fmt.Errorf("encode curve %s: %w", s.alg, err)
	}
	return params, nil
}

// publicKeysEqual reports whether a and b are the same ECDSA, RSA or Ed25519 public key.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	key, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && key.Equal(b)
}
