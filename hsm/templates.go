package hsm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// caPrivateKeyTemplate returns the attributes of a CA private key, for generation and
// for unwrapping. The key signs only. Because it is sensitive (CKA_SENSITIVE) but
// extractable (CKA_EXTRACTABLE), its value can leave the token only wrapped by another key.
//
// NOTE: CKA_WRAP_WITH_TRUSTED stays false. Setting it would limit wrapping to keys with
// CKA_TRUSTED, which only the security officer can set, and the ephemeral transport
// key is created by the user.
func caPrivateKeyTemplate(id string, spec keySpec) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, spec.keyType),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id)),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, id),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
	}
}

// caPublicKeyTemplate returns the attributes of the public half of a CA key.
func caPublicKeyTemplate(id string, spec keySpec) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, spec.keyType),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id)),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, id),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
	}
}

// caPublicKeyGenerateTemplate adds the key size to caPublicKeyTemplate for C_GenerateKeyPair.
func caPublicKeyGenerateTemplate(id string, spec keySpec) ([]*pkcs11.Attribute, error) {
	template := caPublicKeyTemplate(id, spec)
	if spec.keyType == pkcs11.CKK_RSA {
		return append(template,
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, spec.bits),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, rsaPublicExponent),
		), nil
	}
	params, err := spec.ecParams()
	if err != nil {
		return nil, err
	}
	return append(template, pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params)), nil
}

// caPublicKeyObjectTemplate adds the key material of pub to caPublicKeyTemplate for
// C_CreateObject. The caller has checked pub against spec.
func caPublicKeyObjectTemplate(id string, spec keySpec, pub crypto.PublicKey) (
	[]*pkcs11.Attribute, error) {
	template := caPublicKeyTemplate(id, spec)
	switch key := pub.(type) {
	case *rsa.PublicKey:
		return append(template, rsaPublicKeyAttributes(key)...), nil
	case *ecdsa.PublicKey:
		params, err := spec.ecParams()
		if err != nil {
			return nil, err
		}
		point, err := ecPoint(key)
		if err != nil {
			return nil, err
		}
		return append(template,
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, point),
		), nil
	case ed25519.PublicKey:
		params, err := spec.ecParams()
		if err != nil {
			return nil, err
		}
		point, err := asn1.Marshal([]byte(key))
		if err != nil {
			return nil, fmt.Errorf("encode Ed25519 point: %w", err)
		}
		return append(template,
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, point),
		), nil
	default:
		return nil, fmt.Errorf("hsm: public key type %T is not supported", pub)
	}
}

func rsaPublicKeyAttributes(key *rsa.PublicKey) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, key.N.Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(key.E)).Bytes()),
	}
}

// ecPoint returns CKA_EC_POINT: the uncompressed point (SEC 1, section 2.3.3) inside a
// DER OCTET STRING, the encoding SoftHSM2 and crypto11 use.
func ecPoint(key *ecdsa.PublicKey) ([]byte, error) {
	raw, err := key.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encode EC point: %w", err)
	}
	point, err := asn1.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("encode EC point: %w", err)
	}
	return point, nil
}

// transportKeyTemplates returns the attributes of the node's RSA transport key pair. The
// private half only unwraps and never leaves the token. The public half only wraps.
func transportKeyTemplates() (public, private []*pkcs11.Attribute) {
	public = []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(TransportKeyID)),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, TransportKeyID),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, transportKeyBits),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, rsaPublicExponent),
	}
	private = []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(TransportKeyID)),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, TransportKeyID),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
	}
	return public, private
}

// recipientKeyTemplate returns a session object for another node's transport public key.
func recipientKeyTemplate(recipient *rsa.PublicKey) []*pkcs11.Attribute {
	return append([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
	}, rsaPublicKeyAttributes(recipient)...)
}

// sessionKeyTemplate returns an ephemeral AES-256 session key. It is extractable so
// that RSA-OAEP can wrap it for the recipient. Unwrapped copies are not extractable.
func sessionKeyTemplate(forUnwrap bool) []*pkcs11.Attribute {
	template := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
	}
	if forUnwrap {
		return append(template,
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
		)
	}
	return append(template,
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, sessionKeyBytes),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
	)
}
