package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"anchor/fsm"
	"anchor/hsm"
)

// KeyManager moves CA keys between the nodes' HSMs and records which nodes
// hold them. Each node runs one.
//
// A node announces its HSM's RSA transport key in its node record. A node
// that holds a CA key wraps it for every node that lacks it: the leader when
// it holds the key, otherwise the first recorded holder, so one node does
// the wrapping. The receiving node unwraps the share into its own HSM, signs
// a proof with the key, and is recorded as a holder once the proof verifies.
// Only wrapped ciphertext enters the log. A node that registers later, such as
// a new member with a fresh token, receives every key the same way.
//
// With a shared token (hsm.Config.Shared), every node already reaches every
// key: the KeyManager neither wraps nor unwraps, publishes no transport key,
// and each node only proves possession by signing with the shared key.
type KeyManager struct {
	state    *fsm.FSM
	apply    Applier
	keys     KeyStore
	nodeID   string
	isLeader func() bool
	logger   *slog.Logger
	shared   bool

	// reported contains the IDs of keys with a lasting problem, logged once, such as
	// keys missing from the HSM. unwrappable contains the keys this HSM cannot wrap,
	// which distribute skips from then on.
	reportedMu  sync.Mutex
	reported    map[string]bool
	unwrappable map[string]bool

	// lastRefresh is when lookAgain last reopened the HSM, and refreshWait the
	// time before it may do so again. Only Run's goroutine uses them.
	lastRefresh time.Time
	refreshWait time.Duration

	// absentRetired holds the retired keys this HSM no longer has, so that
	// each is looked up on the token once per process. Only Run's goroutine
	// uses it.
	absentRetired map[string]bool

	// self is the record this node last registered, nil before Register
	// succeeded. lastRegister is when reconcile last registered it again.
	selfMu       sync.Mutex
	self         *fsm.Node
	lastRegister time.Time
}

// reregisterInterval is the shortest time between two registrations that
// reconcile sends while the replicated record differs from this node's.
const reregisterInterval = 2 * time.Second

// minRefreshWait and maxRefreshWait bound the time between two reopenings of the
// HSM to look for a key this node should reach but does not find. The wait doubles
// after each reopening that finds nothing, because every reopening stops signing
// for a moment.
const (
	minRefreshWait = 10 * time.Second
	maxRefreshWait = 10 * time.Minute
)

// sharedKeyStore is implemented by a KeyStore that may be a token shared by every
// node, as *hsm.HSM is.
type sharedKeyStore interface {
	Shared() bool
}

// NewKeyManager returns the key manager of node nodeID.
func NewKeyManager(state *fsm.FSM, apply Applier, keys KeyStore, nodeID string,
	isLeader func() bool, logger *slog.Logger) *KeyManager {
	shared := false
	if s, ok := keys.(sharedKeyStore); ok {
		shared = s.Shared()
	}
	return &KeyManager{state: state, apply: apply, keys: keys, nodeID: nodeID,
		isLeader: isLeader, logger: logger, shared: shared, reported: map[string]bool{},
		unwrappable: map[string]bool{}, refreshWait: minRefreshWait,
		absentRetired: map[string]bool{}}
}

// HoldsKey reports whether nodeID is a recorded holder of CA key keyID: a node
// that proved with fsm.CmdConfirmKey that its HSM signs with the key, or the
// key's origin. A node must not sign for a CA whose key it does not hold, even
// if its HSM has an object with that ID. It returns false for an unknown key.
func HoldsKey(tx *fsm.Tx, keyID, nodeID string) bool {
	k, err := tx.Key(keyID)
	return err == nil && slices.Contains(k.Holders, nodeID)
}

// HeldSigner returns this node's Signer for CA key keyID if the replicated state
// records nodeID as a holder of the key. Otherwise it returns an fsm.Error with
// CodeUnavailable: the node must leave signing for that CA to nodes that hold the key.
// It is meant for issuers, OCSP responders and CRL publishers, in place of keys.Signer.
func HeldSigner(state *fsm.FSM, keys KeyStore, nodeID, keyID string) (crypto.Signer, error) {
	isHolder := false
	err := state.View(func(tx *fsm.Tx) error {
		isHolder = HoldsKey(tx, keyID, nodeID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !isHolder {
		return nil, fsm.Errorf(fsm.CodeUnavailable,
			"node %s has not proved possession of CA key %s", nodeID, keyID)
	}
	signer, err := keys.Signer(keyID)
	if err != nil {
		return nil, fsm.Errorf(fsm.CodeUnavailable,
			"node %s is a recorded holder of CA key %s but cannot load it: %v", nodeID, keyID, err)
	}
	return signer, nil
}

// Register records this node in the replicated state, with its HSM transport
// key unless the token is shared. It retries until ctx ends, because the
// cluster may not have a leader yet and the HSM may fail for a moment. Run
// registers the node again whenever the replicated record stops matching,
// as after a snapshot restore.
func (m *KeyManager) Register(ctx context.Context, rec fsm.Node) error {
	for {
		err := m.registerOnce(ctx, rec)
		if err == nil {
			m.logger.Info("node registered", "shared_hsm", m.shared)
			return nil
		}
		m.logger.Warn("node registration failed, retrying", "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (m *KeyManager) registerOnce(ctx context.Context, rec fsm.Node) error {
	rec.ID = m.nodeID
	rec.TransportKey = nil
	if !m.shared {
		pub, err := m.keys.TransportPublicKey()
		if err != nil {
			return fmt.Errorf("read HSM transport key: %w", err)
		}
		if rec.TransportKey, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return err
		}
	}
	if err := applyDecode(ctx, m.apply, fsm.MustCommand(fsm.CmdRegisterNode, rec), nil); err != nil {
		return err
	}
	m.selfMu.Lock()
	m.self = &rec
	m.selfMu.Unlock()
	return nil
}

// checkRegistration registers this node again when its replicated record
// is missing or differs from what it registered. A restored snapshot
// replaces the records with those of the cluster it was saved from, whose
// addresses and HSM transport keys may not be this cluster's.
func (m *KeyManager) checkRegistration(ctx context.Context, nodes []fsm.Node) {
	m.selfMu.Lock()
	self, last := m.self, m.lastRegister
	m.selfMu.Unlock()
	if self == nil {
		return
	}
	for i := range nodes {
		if nodes[i].ID == m.nodeID && sameRegistration(&nodes[i], self) {
			return
		}
	}
	if time.Since(last) < reregisterInterval {
		return
	}
	m.selfMu.Lock()
	m.lastRegister = time.Now()
	m.selfMu.Unlock()
	m.logger.Warn("replicated record of this node differs from its configuration, as after a " +
		"snapshot restore; registering again")
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.registerOnce(rctx, *self); err != nil {
		m.logger.Warn("node registration failed, retrying", "error", err)
		return
	}
	m.logger.Info("node registered again")
}

func sameRegistration(a, b *fsm.Node) bool {
	return a.RaftAddr == b.RaftAddr && a.GRPCAddr == b.GRPCAddr && a.HTTPAddr == b.HTTPAddr &&
		bytes.Equal(a.TransportKey, b.TransportKey)
}

// Run reconciles key shares after every applied batch, and every few seconds
// to retry failures, until ctx ends.
func (m *KeyManager) Run(ctx context.Context) {
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	for {
		changed := m.state.Watch()
		m.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

type keyView struct {
	keys    []fsm.Key
	retired []fsm.RetiredKey
	nodes   []fsm.Node
	shares  map[string]*fsm.KeyShare // shares addressed to this node, by key ID
	shared  map[string]bool          // "keyID|nodeID" of every published share
}

func (m *KeyManager) reconcile(ctx context.Context) {
	v, err := m.read()
	if err != nil {
		m.logger.Error("read key state", "error", err)
		return
	}
	m.checkRegistration(ctx, v.nodes)
	m.destroyRetired(v.retired)
	for i := range v.keys {
		k := &v.keys[i]
		if !m.keys.HasKey(k.ID) && !m.lookAgain(k) {
			m.obtain(k, v)
			continue
		}
		if !slices.Contains(k.Holders, m.nodeID) {
			m.confirm(ctx, k)
		}
		if !m.shared && m.distributes(k) {
			m.distribute(ctx, k, v)
		}
	}
}

// destroyRetired deletes from this node's HSM the retired keys it still
// has. On a shared token the first node to get there destroys the key for
// all.
func (m *KeyManager) destroyRetired(retired []fsm.RetiredKey) {
	for _, k := range retired {
		if m.absentRetired[k.ID] {
			continue
		}
		if !m.keys.HasKey(k.ID) {
			m.absentRetired[k.ID] = true
			continue
		}
		if err := m.keys.DestroyKey(k.ID); err != nil {
			m.reportOnce(k.ID, "retired key not destroyed", "key", k.ID, "error", err)
			continue
		}
		m.absentRetired[k.ID] = true
		m.logger.Info("retired key destroyed in this node's HSM", "key", k.ID,
			"retired_at", k.RetiredAt)
	}
}

// lookAgain reopens the HSM and reports whether it has key k now. It does so only
// when this node should reach k without a share, because it is a recorded holder
// (such as the node whose token a key ceremony wrote to) or the token is shared.
// SoftHSM2 can hide keys that another process created until the token is reopened
// (see hsm.HSM.Refresh).
func (m *KeyManager) lookAgain(k *fsm.Key) bool {
	if !m.shared && !slices.Contains(k.Holders, m.nodeID) {
		return false
	}
	if time.Since(m.lastRefresh) < m.refreshWait {
		return false
	}
	m.lastRefresh = time.Now()
	if err := m.keys.Refresh(); err != nil {
		m.logger.Error("HSM reopen failed while looking for a CA key", "key", k.ID, "error", err)
		return false
	}
	if !m.keys.HasKey(k.ID) {
		m.refreshWait = min(2*m.refreshWait, maxRefreshWait)
		m.logger.Warn("CA key still missing after reopening the HSM", "key", k.ID,
			"next_reopen_in", m.refreshWait)
		return false
	}
	m.refreshWait = minRefreshWait
	m.logger.Info("CA key found after reopening the HSM", "key", k.ID)
	return true
}

// obtain imports a key this node's HSM lacks from the share addressed to it.
// A shared token has nothing to import: the key is missing from the token. So is
// a key this node is a recorded holder of and has no share for.
func (m *KeyManager) obtain(k *fsm.Key, v *keyView) {
	if m.shared {
		m.reportOnce(k.ID, "CA key missing from the shared HSM", "key", k.ID,
			"origin", k.Origin)
		return
	}
	s := v.shares[k.ID]
	if s == nil {
		if slices.Contains(k.Holders, m.nodeID) {
			m.reportOnce(k.ID, "CA key recorded as held by this node is missing from its HSM",
				"key", k.ID, "origin", k.Origin)
		}
		return
	}
	m.receive(k, s)
}

func (m *KeyManager) read() (*keyView, error) {
	v := &keyView{shares: map[string]*fsm.KeyShare{}, shared: map[string]bool{}}
	err := m.state.View(func(tx *fsm.Tx) error {
		var err error
		if v.keys, err = tx.Keys(); err != nil {
			return err
		}
		if v.retired, err = tx.RetiredKeys(); err != nil {
			return err
		}
		if v.nodes, err = tx.Nodes(); err != nil {
			return err
		}
		for _, k := range v.keys {
			for _, n := range v.nodes {
				s, err := tx.KeyShare(k.ID, n.ID)
				if err != nil {
					continue
				}
				v.shared[k.ID+"|"+n.ID] = true
				if n.ID == m.nodeID {
					v.shares[k.ID] = s
				}
			}
		}
		return nil
	})
	return v, err
}

// distributes reports whether this node wraps key k for the nodes lacking it.
func (m *KeyManager) distributes(k *fsm.Key) bool {
	if m.isLeader() {
		return true
	}
	return len(k.Holders) > 0 && k.Holders[0] == m.nodeID
}

func (m *KeyManager) distribute(ctx context.Context, k *fsm.Key, v *keyView) {
	if m.isUnwrappable(k.ID) {
		return // not wrappable: trying again on every batch would only repeat the error
	}
	for _, n := range v.nodes {
		if n.ID == m.nodeID || slices.Contains(k.Holders, n.ID) || v.shared[k.ID+"|"+n.ID] {
			continue
		}
		if len(n.TransportKey) == 0 {
			continue // a node on a shared token, which receives no shares
		}
		if err := m.share(ctx, k, n); err != nil {
			if errors.Is(err, hsm.ErrKeyNotWrappable) {
				m.reportedMu.Lock()
				m.unwrappable[k.ID] = true
				m.reportedMu.Unlock()
				m.logger.Warn("CA key cannot leave this HSM, other nodes will not hold it",
					"key", k.ID, "algorithm", k.Algorithm, "error", err)
				return
			}
			m.logger.Error("share CA key failed", "key", k.ID, "for_node", n.ID, "error", err)
			continue
		}
		m.logger.Info("CA key wrapped for node", "key", k.ID, "for_node", n.ID)
	}
}

// share wraps key k to node n's transport key and publishes the share.
func (m *KeyManager) share(ctx context.Context, k *fsm.Key, n fsm.Node) error {
	pub, err := x509.ParsePKIXPublicKey(n.TransportKey)
	if err != nil {
		return err
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return errors.New("node transport key is not an RSA key")
	}
	transport, wrapped, err := m.keys.WrapKey(k.ID, rsaPub)
	if err != nil {
		return err
	}
	cmd := fsm.MustCommand(fsm.CmdShareKey, fsm.KeyShare{
		KeyID: k.ID, NodeID: n.ID, FromNode: m.nodeID, TransportKey: transport, WrappedKey: wrapped,
	})
	return applyDecode(ctx, m.apply, cmd, nil)
}

func (m *KeyManager) receive(k *fsm.Key, s *fsm.KeyShare) {
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		m.logger.Error("unreadable public key", "key", k.ID, "error", err)
		return
	}
	if _, err := m.keys.UnwrapKey(k.ID, hsm.Algorithm(k.Algorithm), pub, s.TransportKey, s.WrappedKey); err != nil {
		m.logger.Error("unwrap CA key failed", "key", k.ID, "from_node", s.FromNode, "error", err)
		return
	}
	m.logger.Info("CA key received into HSM", "key", k.ID, "from_node", s.FromNode)
}

// confirm proves possession of k by signing a digest that names the key and
// this node; the log accepts the proof only if it verifies.
func (m *KeyManager) confirm(ctx context.Context, k *fsm.Key) {
	signer, err := m.keys.Signer(k.ID)
	if err != nil {
		m.logger.Error("load CA key for proof", "key", k.ID, "error", err)
		return
	}
	digest := fsm.KeyProofDigest(k.ID, m.nodeID)
	sig, err := signer.Sign(rand.Reader, digest, fsm.KeyProofOpts(signer.Public()))
	if err != nil {
		m.logger.Error("sign proof of possession", "key", k.ID, "error", err)
		return
	}
	cmd := fsm.MustCommand(fsm.CmdConfirmKey, fsm.ConfirmKey{KeyID: k.ID, NodeID: m.nodeID, Signature: sig})
	if err := applyDecode(ctx, m.apply, cmd, nil); err != nil {
		m.logger.Error("record proof of possession", "key", k.ID, "error", err)
		return
	}
	m.logger.Info("proved possession of CA key", "key", k.ID)
}

func (m *KeyManager) isUnwrappable(keyID string) bool {
	m.reportedMu.Lock()
	defer m.reportedMu.Unlock()
	return m.unwrappable[keyID]
}

// reportOnce logs a lasting problem with key keyID at warning level the first
// time reconcile meets it.
func (m *KeyManager) reportOnce(keyID, msg string, args ...any) {
	m.reportedMu.Lock()
	seen := m.reported[keyID]
	m.reported[keyID] = true
	m.reportedMu.Unlock()
	if !seen {
		m.logger.Warn(msg, args...)
	}
}
