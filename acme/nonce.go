package acme

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"anchor/fsm"
)

// Nonce layout, base64url without padding:
//
//	version (1) | issued, Unix seconds (8) | server instance (8) | random (12) |
//	HMAC-SHA256 of the preceding bytes, truncated (16)
//
// The server instance is random per process, so it names the issuing node
// without configuration and changes when the node restarts.
//
// The HMAC key is replicated (fsm.ACMENonceKey), so every node can tell a
// nonce of the cluster from a forged one without asking the issuer.
//
// A node redeems a nonce in one of two ways:
//   - by the server instance that issued it, in memory (no log write);
//   - by any other node, or by the issuer after a restart, through the
//     replicated acme.nonce.redeem command, which rejects a second use.
//
// The common case, a client that stays on one node, costs no log write. A
// client that moves between nodes costs one commit per foreign nonce.
//
// NOTE: the issuer checks the replicated set before it accepts a nonce in
// memory, but a copy of the same request sent to another node at the same
// moment can still win there before the log entry reaches the issuer. This
// window, one replication delay, is the price of not committing every nonce.
const (
	nonceVersion  = 1
	nonceMACSize  = 16
	nonceRandSize = 12
	nonceHeadSize = 1 + 8 + 8 + nonceRandSize
	// maxLocalNonces bounds the in-memory set of redeemed local nonces.
	maxLocalNonces = 1 << 20
	// nonceClockSkew is how far in the future an issue time may lie, for
	// nonces of other nodes whose clocks run ahead.
	nonceClockSkew = time.Minute
)

// nonceSource issues nonces and redeems them.
type nonceSource struct {
	instance [8]byte
	lifetime time.Duration
	state    *fsm.FSM
	apply    Applier

	keyMu sync.Mutex
	key   []byte

	mu   sync.Mutex
	seen map[string]time.Time // redeemed local nonces, to their expiry
	// floor rejects local nonces issued before it; it rises when seen is
	// full, so memory stays bounded.
	floor time.Time
}

func newNonceSource(lifetime time.Duration, state *fsm.FSM, apply Applier) (*nonceSource, error) {
	n := &nonceSource{
		lifetime: lifetime, state: state, apply: apply,
		seen: map[string]time.Time{},
	}
	if _, err := rand.Read(n.instance[:]); err != nil {
		return nil, fmt.Errorf("generate nonce instance ID: %w", err)
	}
	return n, nil
}

// hmacKey returns the replicated nonce key, creating it through the log the
// first time any node needs it.
func (n *nonceSource) hmacKey(ctx context.Context) ([]byte, error) {
	n.keyMu.Lock()
	defer n.keyMu.Unlock()
	if n.key != nil {
		return n.key, nil
	}
	var key []byte
	err := n.state.View(func(tx *fsm.Tx) error {
		var err error
		key, err = tx.ACMENonceKey()
		return err
	})
	if fsm.IsNotFound(err) {
		key, err = n.createKey(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("load ACME nonce key: %w", err)
	}
	n.key = key
	return key, nil
}

func (n *nonceSource) createKey(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("generate nonce key: %w", err)
	}
	cmd, err := fsm.NewCommand(fsm.CmdACMECreateNonceKey, fsm.ACMENonceKey{Key: fresh})
	if err != nil {
		return nil, err
	}
	res, err := n.apply.Apply(ctx, cmd)
	if err != nil {
		return nil, err
	}
	var stored fsm.ACMENonceKey
	if err := res.Decode(&stored); err != nil {
		return nil, err
	}
	return stored.Key, nil
}

// issue returns a new nonce.
func (n *nonceSource) issue(ctx context.Context) (string, error) {
	key, err := n.hmacKey(ctx)
	if err != nil {
		return "", err
	}
	buf := make([]byte, nonceHeadSize, nonceHeadSize+nonceMACSize)
	buf[0] = nonceVersion
	binary.BigEndian.PutUint64(buf[1:9], uint64(time.Now().Unix()))
	copy(buf[9:17], n.instance[:])
	if _, err := rand.Read(buf[17 : 17+nonceRandSize]); err != nil {
		return "", fmt.Errorf("generate nonce: %w", err)
	}
	buf = append(buf, nonceMAC(key, buf)...)
	return base64.RawURLEncoding.EncodeToString(buf), nil
}

func nonceMAC(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)[:nonceMACSize]
}

// parsedNonce is the content of an authenticated nonce.
type parsedNonce struct {
	issued   time.Time
	instance [8]byte
}

// parseNonce decodes a nonce and checks its HMAC. It does not redeem it.
func parseNonce(key []byte, nonce string) (*parsedNonce, error) {
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil {
		return nil, badNonce("nonce is not base64url")
	}
	if len(raw) != nonceHeadSize+nonceMACSize || raw[0] != nonceVersion {
		return nil, badNonce("nonce has an unknown format")
	}
	body, mac := raw[:len(raw)-nonceMACSize], raw[len(raw)-nonceMACSize:]
	if !hmac.Equal(mac, nonceMAC(key, body)) {
		return nil, badNonce("nonce was not issued by this server")
	}
	p := &parsedNonce{issued: time.Unix(int64(binary.BigEndian.Uint64(raw[1:9])), 0)}
	copy(p.instance[:], raw[9:17])
	return p, nil
}

// check authenticates a nonce and checks its age, without redeeming it, so
// that a request with a bad nonce is rejected before any other work.
func (n *nonceSource) check(ctx context.Context, nonce string) (*parsedNonce, error) {
	if nonce == "" {
		return nil, badNonce("the JWS protected header has no nonce")
	}
	key, err := n.hmacKey(ctx)
	if err != nil {
		return nil, err
	}
	p, err := parseNonce(key, nonce)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if now.After(p.issued.Add(n.lifetime)) {
		return nil, badNonce("nonce expired")
	}
	if p.issued.After(now.Add(nonceClockSkew)) {
		return nil, badNonce("nonce was issued in the future")
	}
	return p, nil
}

// redeem marks a checked nonce used. It fails with badNonce when it was used
// before.
func (n *nonceSource) redeem(ctx context.Context, nonce string, p *parsedNonce) error {
	expires := p.issued.Add(n.lifetime)
	var replicated bool
	if err := n.state.View(func(tx *fsm.Tx) error {
		replicated = tx.ACMENonceRedeemed(nonce, expires)
		return nil
	}); err != nil {
		return err
	}
	if replicated {
		return badNonce("nonce was already used")
	}
	if p.instance == n.instance {
		return n.redeemLocal(nonce, p.issued, expires)
	}
	return n.redeemReplicated(ctx, nonce, expires)
}

func (n *nonceSource) redeemLocal(nonce string, issued, expires time.Time) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if issued.Before(n.floor) {
		return badNonce("nonce is too old for this node's nonce cache")
	}
	if _, used := n.seen[nonce]; used {
		return badNonce("nonce was already used")
	}
	if len(n.seen) >= maxLocalNonces {
		n.pruneLocked(time.Now())
	}
	n.seen[nonce] = expires
	return nil
}

// pruneLocked drops expired entries. When the set is still half full, it
// raises the floor to now and empties the set: older nonces then fail with
// badNonce, and clients retry with a fresh one.
func (n *nonceSource) pruneLocked(now time.Time) {
	for k, exp := range n.seen {
		if now.After(exp) {
			delete(n.seen, k)
		}
	}
	if len(n.seen) >= maxLocalNonces/2 {
		n.floor = now.Truncate(time.Second).Add(time.Second)
		clear(n.seen)
	}
}

func (n *nonceSource) redeemReplicated(ctx context.Context, nonce string,
	expires time.Time) error {
	cmd, err := fsm.NewCommand(fsm.CmdACMERedeemNonce, fsm.RedeemACMENonce{
		Nonce: nonce, Expires: expires,
	})
	if err != nil {
		return err
	}
	res, err := n.apply.Apply(ctx, cmd)
	if err != nil {
		return fmt.Errorf("redeem nonce through the log: %w", err)
	}
	switch err := res.Decode(nil); fsm.CodeOf(err) {
	case fsm.CodeAlreadyExists:
		return badNonce("nonce was already used")
	case fsm.CodeFailedPrecondition:
		return badNonce("nonce expired")
	default:
		return err
	}
}

// prune drops expired local entries; the server calls it periodically.
func (n *nonceSource) prune() {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	for k, exp := range n.seen {
		if now.After(exp) {
			delete(n.seen, k)
		}
	}
}
