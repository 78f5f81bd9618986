package ca

import (
	"crypto"
	"crypto/rsa"

	"anchor/hsm"
)

// KeyStore is the node's HSM as the CA uses it. *hsm.HSM implements it.
type KeyStore interface {
	GenerateKey(id string, alg hsm.Algorithm) (crypto.Signer, error)
	Signer(id string) (crypto.Signer, error)
	HasKey(id string) bool
	// Refresh reopens the token, so that keys another process created on it are found.
	Refresh() error
	DestroyKey(id string) error
	TransportPublicKey() (*rsa.PublicKey, error)
	WrapKey(id string, recipient *rsa.PublicKey) (transportKey, wrappedKey []byte, err error)
	UnwrapKey(id string, alg hsm.Algorithm, pub crypto.PublicKey,
		transportKey, wrappedKey []byte) (crypto.Signer, error)
}
