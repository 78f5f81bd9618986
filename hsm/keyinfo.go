package hsm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/asn1"
	"encoding/binary"
	"fmt"

	"github.com/miekg/pkcs11"
)

// keyInfo describes a CA key pair found on the token.
type keyInfo struct {
	keyType uint // CKA_KEY_TYPE
	// public is set for CKK_EC keys (*ecdsa.PublicKey) and CKK_EC_EDWARDS keys
	// (ed25519.PublicKey), which poolSigner signs with. RSA keys go through crypto11.
	public crypto.PublicKey
}

// lookupKey reads the key type and, for EC and Edwards keys, the public key of the key
// pair id in a raw session. The error wraps ErrKeyNotFound unless the token has both
// halves.
func (h *HSM) lookupKey(id string) (keyInfo, error) {
	var info keyInfo
	err := h.withRawSession("find key", func(s rawSession) error {
		public, hasPublic, err := s.findObject(pkcs11.CKO_PUBLIC_KEY, id)
		if err != nil {
			return err
		}
		_, hasPrivate, err := s.findObject(pkcs11.CKO_PRIVATE_KEY, id)
		if err != nil {
			return err
		}
		if !hasPublic || !hasPrivate {
			return fmt.Errorf("%w: id %q on token %q", ErrKeyNotFound, id, h.cfg.TokenLabel)
		}
		info, err = s.readKeyInfo(public)
		return err
	})
	if err != nil {
		return keyInfo{}, fmt.Errorf("hsm: find key %q: %w", id, err)
	}
	return info, nil
}

func (s rawSession) readKeyInfo(public pkcs11.ObjectHandle) (keyInfo, error) {
	attributes, err := s.ctx.GetAttributeValue(s.handle, public, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
	})
	if err != nil {
		return keyInfo{}, fmt.Errorf("read key type: %w", err)
	}
	info := keyInfo{keyType: ulongValue(attributes[0].Value)}
	if info.keyType != pkcs11.CKK_EC && info.keyType != ckkECEdwards {
		return info, nil
	}

	attributes, err = s.ctx.GetAttributeValue(s.handle, public, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil),
	})
	if err != nil {
		return keyInfo{}, fmt.Errorf("read public key: %w", err)
	}
	params, point := attributes[0].Value, attributes[1].Value
	if info.keyType == ckkECEdwards {
		info.public, err = parseEd25519Point(point)
	} else {
		info.public, err = parseECPublicKey(params, point)
	}
	return info, err
}

// parseECPublicKey decodes CKA_EC_PARAMS (a named curve OID) and CKA_EC_POINT (an
// uncompressed point in a DER OCTET STRING, as ecPoint writes it) of a P-256 or
// P-384 key.
func parseECPublicKey(params, point []byte) (*ecdsa.PublicKey, error) {
	var spec *keySpec
	for _, alg := range []Algorithm{ECDSAP256, ECDSAP384} {
		candidate := keySpecs[alg]
		encoded, err := candidate.ecParams()
		if err == nil && string(encoded) == string(params) {
			spec = &candidate
		}
	}
	if spec == nil {
		return nil, fmt.Errorf("EC key on an unsupported curve (CKA_EC_PARAMS %x): "+
			"use P-256 or P-384", params)
	}
	var raw []byte
	if rest, err := asn1.Unmarshal(point, &raw); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("CKA_EC_POINT of %d bytes is not a DER OCTET STRING", len(point))
	}
	key, err := ecdsa.ParseUncompressedPublicKey(spec.curve, raw)
	if err != nil {
		return nil, fmt.Errorf("decode CKA_EC_POINT: %w", err)
	}
	return key, nil
}

// parseEd25519Point decodes CKA_EC_POINT of an Ed25519 key: the 32-byte public key
// (RFC 8032, section 5.1.5) in a DER OCTET STRING, as SoftHSM2 2.6.1 stores it, or
// bare, as PKCS#11 v3.0 also allows.
func parseEd25519Point(point []byte) (ed25519.PublicKey, error) {
	if len(point) == ed25519.PublicKeySize {
		return ed25519.PublicKey(point), nil
	}
	var raw []byte
	rest, err := asn1.Unmarshal(point, &raw)
	if err != nil || len(rest) != 0 || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("CKA_EC_POINT of %d bytes is not an Ed25519 public key", len(point))
	}
	return ed25519.PublicKey(raw), nil
}

// ulongValue decodes a CK_ULONG attribute, which miekg/pkcs11 returns in host byte
// order and size.
func ulongValue(value []byte) uint {
	switch len(value) {
	case 8:
		return uint(binary.NativeEndian.Uint64(value))
	case 4:
		return uint(binary.NativeEndian.Uint32(value))
	default:
		return 0
	}
}
