package fsm

import (
	"bytes"
	"time"
)

// Buckets and keys of ACME replay nonces.
const (
	bucketACMEMeta   = "acme_meta"
	keyACMENonceKey  = "nonce_key"
	bucketACMENonces = "acme_nonces" // 8-byte big-endian expiry (Unix s) + nonce
)

// Command types of ACME replay nonces.
const (
	CmdACMECreateNonceKey CommandType = "acme.nonce_key.create"
	CmdACMERedeemNonce    CommandType = "acme.nonce.redeem"
)

// maxNoncePrune bounds how many expired nonces one redeem command deletes,
// so that a command's cost stays small after a quiet period.
const maxNoncePrune = 256

// ACMENonceKey is the payload and result of CmdACMECreateNonceKey: the HMAC
// key that authenticates the nonces every node issues. The key is set once;
// a later command returns the stored key instead of replacing it.
type ACMENonceKey struct {
	Key []byte `json:"key"`
}

// RedeemACMENonce is the payload of CmdACMERedeemNonce: a nonce presented to
// a node other than the one that issued it. Expires is derived from the
// nonce, so the same nonce always gives the same record.
type RedeemACMENonce struct {
	Nonce   string    `json:"nonce"`
	Expires time.Time `json:"expires"`
}

func init() {
	register(CmdACMECreateNonceKey, applyCreateACMENonceKey)
	register(CmdACMERedeemNonce, applyRedeemACMENonce)
}

func applyCreateACMENonceKey(tx *Tx, cmd *Command) (any, error) {
	if existing := tx.getRaw(bucketACMEMeta, keyACMENonceKey); existing != nil {
		return ACMENonceKey{Key: bytes.Clone(existing)}, nil
	}
	var p ACMENonceKey
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if len(p.Key) < 32 {
		return nil, Errorf(CodeInvalidArgument, "ACME nonce key has %d bytes, need 32", len(p.Key))
	}
	return p, tx.putRaw(bucketACMEMeta, keyACMENonceKey, p.Key)
}

// ACMENonceKey returns the HMAC key of ACME nonces.
func (t *Tx) ACMENonceKey() ([]byte, error) {
	key := t.getRaw(bucketACMEMeta, keyACMENonceKey)
	if key == nil {
		return nil, Errorf(CodeNotFound, "ACME nonce key not created yet")
	}
	return bytes.Clone(key), nil
}

func applyRedeemACMENonce(tx *Tx, cmd *Command) (any, error) {
	var p RedeemACMENonce
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if err := pruneACMENonces(tx, cmd.Time); err != nil {
		return nil, err
	}
	if !cmd.Time.Before(p.Expires) {
		return nil, Errorf(CodeFailedPrecondition, "nonce expired at %s",
			p.Expires.Format(time.RFC3339))
	}
	key := string(uint64Bytes(uint64(p.Expires.Unix()))) + p.Nonce
	if tx.has(bucketACMENonces, key) {
		return nil, Errorf(CodeAlreadyExists, "nonce was already used")
	}
	return nil, tx.putRaw(bucketACMENonces, key, []byte{})
}

// pruneACMENonces deletes up to maxNoncePrune nonces that expired before now.
func pruneACMENonces(tx *Tx, now time.Time) error {
	limit := uint64Bytes(uint64(now.Unix()))
	var expired []string
	tx.scan(bucketACMENonces, "", func(key string, _ []byte) bool {
		if len(key) < 8 || key[:8] >= string(limit) || len(expired) == maxNoncePrune {
			return false
		}
		expired = append(expired, key)
		return true
	})
	for _, key := range expired {
		if err := tx.del(bucketACMENonces, key); err != nil {
			return err
		}
	}
	return nil
}

// ACMENonceRedeemed reports whether a nonce presented to a node other than
// its issuer was already redeemed through the log.
func (t *Tx) ACMENonceRedeemed(nonce string, expires time.Time) bool {
	return t.has(bucketACMENonces, string(uint64Bytes(uint64(expires.Unix())))+nonce)
}
