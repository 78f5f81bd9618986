package crl

import (
	"context"
	"crypto"
	"errors"
	"fmt"

	"anchor/fsm"
)

// Signers looks up CA private keys. The node passes its *hsm.HSM.
type Signers interface {
	// Signer returns the signer of the key named keyID (fsm.CA.KeyID). The
	// Publisher calls it from its Run goroutine before each CRL it signs.
	Signer(keyID string) (crypto.Signer, error)
}

// Applier commits commands to the replicated log. The cluster node satisfies
// it and forwards the command to the Raft leader.
type Applier interface {
	// Apply commits cmd and returns its result once the command is applied,
	// or an error when it could not be committed before ctx ends. A command
	// that the handler rejected is returned as a Result with Err set. The
	// Publisher calls it from its Run goroutine.
	Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error)
}

// publicKeyEqualer is implemented by every public key type of crypto/*.
type publicKeyEqualer interface {
	Equal(crypto.PublicKey) bool
}

// errKeyUnavailable marks a CA key that this node's HSM cannot provide, a
// failure that recurs at every check until the key arrives.
var errKeyUnavailable = errors.New("CA key unavailable")

// caSigner returns the signer of ca and checks that it holds the key of the
// CA certificate, so that a wrong key is reported here rather than as a bad
// signature on every node.
func caSigner(signers Signers, ca *fsm.CA) (crypto.Signer, error) {
	cert, err := ca.Certificate()
	if err != nil {
		return nil, err
	}
	signer, err := signers.Signer(ca.KeyID)
	if err != nil {
		return nil, fmt.Errorf("%w: find key %s of CA %s: %w", errKeyUnavailable, ca.KeyID, ca.ID, err)
	}
	pub, ok := signer.Public().(publicKeyEqualer)
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("key %s does not match the certificate of CA %s", ca.KeyID, ca.ID)
	}
	return signer, nil
}
