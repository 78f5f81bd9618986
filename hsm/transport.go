package hsm

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// TransportKeyID is the CKA_ID and CKA_LABEL of the node's transport key pair. CA keys
// cannot use it.
const TransportKeyID = "anchor-transport"

// transportKeyBits is the modulus size of transport keys.
const transportKeyBits = 3072

// minRecipientBits is the smallest recipient transport key WrapKey accepts.
const minRecipientBits = 2048

// TransportPublicKey returns the public half of this token's RSA-3072 transport key
// pair, creating the pair on the first call. Other nodes wrap CA keys to it with
// WrapKey. The private half can only unwrap and never leaves the token. On a shared
// token the error wraps ErrShared.
func (h *HSM) TransportPublicKey() (*rsa.PublicKey, error) {
	if h.cfg.Shared {
		return nil, fmt.Errorf("%w: token %q needs no transport key", ErrShared, h.cfg.TokenLabel)
	}
	h.objectsMu.Lock()
	defer h.objectsMu.Unlock()

	if h.transport == nil {
		var public *rsa.PublicKey
		objectWriteMu.Lock()
		err := h.withRawSession("transport key", func(s rawSession) error {
			var err error
			public, err = h.loadOrCreateTransportKey(s)
			return err
		})
		objectWriteMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("hsm: transport key on token %q: %w", h.cfg.TokenLabel, err)
		}
		h.transport = public
	}
	return &rsa.PublicKey{N: new(big.Int).Set(h.transport.N), E: h.transport.E}, nil
}

func (h *HSM) loadOrCreateTransportKey(s rawSession) (*rsa.PublicKey, error) {
	public, hasPublic, err := s.findObject(pkcs11.CKO_PUBLIC_KEY, TransportKeyID)
	if err != nil {
		return nil, err
	}
	_, hasPrivate, err := s.findObject(pkcs11.CKO_PRIVATE_KEY, TransportKeyID)
	if err != nil {
		return nil, err
	}

	switch {
	case hasPublic && hasPrivate:
		return s.readRSAPublicKey(public)
	case hasPublic || hasPrivate:
		return nil, fmt.Errorf("token contains only one half of the key pair %q: delete it "+
			"(for example with pkcs11-tool --delete-object) so that a new pair is created",
			TransportKeyID)
	}

	publicTemplate, privateTemplate := transportKeyTemplates()
	mechanism := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}
	public, _, err = s.ctx.GenerateKeyPair(s.handle, mechanism, publicTemplate, privateTemplate)
	if err != nil {
		return nil, fmt.Errorf("generate RSA-%d key pair: %w", transportKeyBits, err)
	}
	h.logger.Info("hsm created transport key pair", "key_id", TransportKeyID,
		"bits", transportKeyBits)
	return s.readRSAPublicKey(public)
}

func (s rawSession) readRSAPublicKey(handle pkcs11.ObjectHandle) (*rsa.PublicKey, error) {
	attributes, err := s.ctx.GetAttributeValue(s.handle, handle, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("read RSA public key: %w", err)
	}
	exponent := new(big.Int).SetBytes(attributes[1].Value)
	if !exponent.IsInt64() || exponent.Int64() < 3 || exponent.Int64() > 1<<31-1 {
		return nil, errors.New("read RSA public key: public exponent out of range")
	}
	return &rsa.PublicKey{
		N: new(big.Int).SetBytes(attributes[0].Value),
		E: int(exponent.Int64()),
	}, nil
}
