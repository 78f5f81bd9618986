package hsm

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/miekg/pkcs11"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// poolSigner is the crypto.Signer of an ECDSA or Ed25519 key. It signs with CKM_ECDSA
// or CKM_EDDSA in sessions of the raw session pool. crypto11 v1.2.5 has no EdDSA, and
// its ECDSA path spent 5% of the CPU time of a SoftHSM2 P-256 signature in Go code,
// mostly encoding the signature, against 2% here (docs/benchmarks.md). Like keySigner
// it names the key by id, so it stays valid when the token is reopened.
type poolSigner struct {
	h      *HSM
	id     string
	public crypto.PublicKey // *ecdsa.PublicKey or ed25519.PublicKey
}

// Public returns the public key read from the token when the signer was created.
func (s *poolSigner) Public() crypto.PublicKey { return s.public }

// Sign signs on the token and is safe for concurrent use. rand is ignored because the
// token draws its own randomness.
//
// For an ECDSA key, digest is the hash of the message and the signature is ASN.1 DER,
// as with ecdsa.PrivateKey. For an Ed25519 key, digest is the whole message, opts must
// be crypto.Hash(0) (nil is taken as that), and the signature is pure Ed25519 (RFC
// 8032), as with ed25519.PrivateKey. Ed25519ph and Ed25519ctx are rejected.
//
// When the sessions or the login were lost underneath, Sign reopens the token and
// retries once.
func (s *poolSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	mechanism := uint(pkcs11.CKM_ECDSA)
	if _, ok := s.public.(ed25519.PublicKey); ok {
		if err := checkEd25519Opts(opts); err != nil {
			return nil, fmt.Errorf("hsm: sign with key %q: %w", s.id, err)
		}
		mechanism = ckmEdDSA
	}

	var signature []byte
	err := s.h.withPooledSession("sign", s.id, func(session rawSession) error {
		key, err := s.h.findPrivateHandle(session, s.id)
		if err != nil {
			return err
		}
		mechanisms := []*pkcs11.Mechanism{pkcs11.NewMechanism(mechanism, nil)}
		if err := session.ctx.SignInit(session.handle, mechanisms, key); err != nil {
			return err
		}
		signature, err = session.ctx.Sign(session.handle, digest)
		return err
	})
	if err == nil && mechanism == pkcs11.CKM_ECDSA {
		signature, err = ecdsaSignatureDER(signature)
	}
	if err != nil {
		return nil, fmt.Errorf("hsm: sign with key %q: %w", s.id, err)
	}
	return signature, nil
}

func checkEd25519Opts(opts crypto.SignerOpts) error {
	if opts == nil {
		return nil
	}
	if options, ok := opts.(*ed25519.Options); ok && options.Context != "" {
		return errors.New("context strings (Ed25519ctx) are not supported")
	}
	if opts.HashFunc() != crypto.Hash(0) {
		return fmt.Errorf("Ed25519 signs the whole message: pass crypto.Hash(0), not %v "+
			"(Ed25519ph is not supported)", opts.HashFunc())
	}
	return nil
}

// ecdsaSignatureDER converts the output of CKM_ECDSA, r and s as big-endian integers
// of equal length (PKCS#11 v2.40, section 2.3.1), to the DER SEQUENCE of two INTEGERs
// that crypto.Signer returns (RFC 3279, section 2.2.3).
func ecdsaSignatureDER(raw []byte) ([]byte, error) {
	if len(raw) == 0 || len(raw)%2 != 0 {
		return nil, fmt.Errorf("CKM_ECDSA returned %d bytes, not r and s of equal length",
			len(raw))
	}
	half := len(raw) / 2
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[:half]))
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[half:]))
	})
	return b.Bytes()
}

// findPrivateHandle returns the handle of the private key id, from the cache or from
// the token. The caller holds h.mu for reading, so cached handles are current.
func (h *HSM) findPrivateHandle(session rawSession, id string) (pkcs11.ObjectHandle, error) {
	h.keysMu.Lock()
	handle, ok := h.handles[id]
	h.keysMu.Unlock()
	if ok {
		return handle, nil
	}

	handle, found, err := session.findObject(pkcs11.CKO_PRIVATE_KEY, id)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("%w: id %q on token %q", ErrKeyNotFound, id, h.cfg.TokenLabel)
	}
	h.keysMu.Lock()
	h.handles[id] = handle
	h.keysMu.Unlock()
	return handle, nil
}
