package fsm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
)

// KeyProofDigest returns the SHA-256 digest a node signs to prove that its HSM
// holds a CA key. The digest names the key and the node, so a proof cannot be
// replayed for another key or node.
func KeyProofDigest(keyID, nodeID string) []byte {
	sum := sha256.Sum256([]byte("anchor key possession proof\x00" + keyID + "\x00" + nodeID))
	return sum[:]
}

// KeyProofOpts are the signer options for a proof: SHA-256 digests, and for
// Ed25519 keys the digest signed as the message.
func KeyProofOpts(pub crypto.PublicKey) crypto.SignerOpts {
	if _, ok := pub.(ed25519.PublicKey); ok {
		return crypto.Hash(0)
	}
	return crypto.SHA256
}

func verifyKeyProof(k *Key, nodeID string, sig []byte) error {
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		return Errorf(CodeInternal, "key %q has an unreadable public key: %v", k.ID, err)
	}
	digest := KeyProofDigest(k.ID, nodeID)
	ok := false
	switch pk := pub.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(pk, digest, sig)
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(pk, crypto.SHA256, digest, sig) == nil
	case ed25519.PublicKey:
		ok = ed25519.Verify(pk, digest, sig)
	}
	if !ok {
		return Errorf(CodeInvalidArgument, "proof of possession of key %q by node %q does not verify", k.ID, nodeID)
	}
	return nil
}
