package fsm

import (
	"bytes"
	"slices"
	"time"
)

// Buckets of node records and CA key distribution.
const (
	bucketNodes     = "nodes"
	bucketKeys      = "keys"
	bucketKeyShares = "key_shares"
)

// Command types of node records and CA key distribution.
const (
	CmdRegisterNode CommandType = "node.register"
	CmdCreateKey    CommandType = "key.create"
	CmdShareKey     CommandType = "key.share"
	CmdConfirmKey   CommandType = "key.confirm"
)

// Node is a cluster member as it announced itself.
type Node struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	GRPCAddr string `json:"grpc_addr"`
	HTTPAddr string `json:"http_addr"`
	// TransportKey is the DER public key (PKIX) of the RSA key pair in the
	// node's HSM that other HSMs wrap CA keys to.
	TransportKey []byte    `json:"transport_key"`
	RegisteredAt time.Time `json:"registered_at"`
}

// Key is a CA private key that lives in the nodes' HSMs.
type Key struct {
	ID        string    `json:"id"`
	Algorithm string    `json:"algorithm"`
	PublicKey []byte    `json:"public_key"` // PKIX DER
	Origin    string    `json:"origin"`     // node whose HSM generated it
	CreatedAt time.Time `json:"created_at"`
	// Holders lists the nodes that proved they can sign with the key, starting with
	// Origin. A node that registers a different transport key (a new HSM) leaves it
	// until it proves possession again.
	Holders []string `json:"holders"`
}

// KeyShare is a CA key wrapped for one node's HSM. Only ciphertext is stored:
// TransportKey is an AES-256 key wrapped with RSA-OAEP to the node's
// transport key, and WrappedKey is the CA key wrapped under that AES key.
type KeyShare struct {
	KeyID        string    `json:"key_id"`
	NodeID       string    `json:"node_id"`
	FromNode     string    `json:"from_node"`
	TransportKey []byte    `json:"transport_key"`
	WrappedKey   []byte    `json:"wrapped_key"`
	CreatedAt    time.Time `json:"created_at"`
}

// ConfirmKey is the payload of CmdConfirmKey: a node's proof that its HSM
// holds KeyID. Signature signs KeyProofDigest(KeyID, NodeID) with the key.
type ConfirmKey struct {
	KeyID     string `json:"key_id"`
	NodeID    string `json:"node_id"`
	Signature []byte `json:"signature"`
}

func init() {
	register(CmdRegisterNode, applyRegisterNode)
	register(CmdCreateKey, applyCreateKey)
	register(CmdShareKey, applyShareKey)
	register(CmdConfirmKey, applyConfirmKey)
}

func applyRegisterNode(tx *Tx, cmd *Command) (any, error) {
	var n Node
	if err := decodePayload(cmd, &n); err != nil {
		return nil, err
	}
	if n.ID == "" {
		return nil, Errorf(CodeInvalidArgument, "node ID is empty")
	}
	var old Node
	found, err := tx.get(bucketNodes, n.ID, &old)
	if err != nil {
		return nil, err
	}
	if found && !bytes.Equal(old.TransportKey, n.TransportKey) {
		// A new transport key means a new HSM, such as a replaced token. Proofs and
		// shares for the old token do not hold for it, so the node receives every key
		// again and proves possession anew.
		if err := forgetNodeKeys(tx, n.ID); err != nil {
			return nil, err
		}
	}
	n.RegisteredAt = cmd.Time
	return n, tx.put(bucketNodes, n.ID, n)
}

// forgetNodeKeys removes nodeID from the holders of every key and deletes the shares
// wrapped for it.
func forgetNodeKeys(tx *Tx, nodeID string) error {
	keys, err := tx.Keys()
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := tx.del(bucketKeyShares, k.ID+"|"+nodeID); err != nil {
			return err
		}
		holders := slices.DeleteFunc(slices.Clone(k.Holders),
			func(h string) bool { return h == nodeID })
		if len(holders) == len(k.Holders) {
			continue
		}
		k.Holders = holders
		if err := tx.put(bucketKeys, k.ID, k); err != nil {
			return err
		}
	}
	return nil
}

func applyCreateKey(tx *Tx, cmd *Command) (any, error) {
	var k Key
	if err := decodePayload(cmd, &k); err != nil {
		return nil, err
	}
	if k.ID == "" || len(k.PublicKey) == 0 {
		return nil, Errorf(CodeInvalidArgument, "key record needs an ID and a public key")
	}
	if tx.has(bucketKeys, k.ID) || tx.has(bucketRetiredKeys, k.ID) {
		return nil, Errorf(CodeAlreadyExists, "key %q already exists", k.ID)
	}
	k.CreatedAt = cmd.Time
	k.Holders = []string{k.Origin}
	return k, tx.put(bucketKeys, k.ID, k)
}

func applyShareKey(tx *Tx, cmd *Command) (any, error) {
	var s KeyShare
	if err := decodePayload(cmd, &s); err != nil {
		return nil, err
	}
	if !tx.has(bucketKeys, s.KeyID) {
		return nil, Errorf(CodeNotFound, "key %q not found", s.KeyID)
	}
	if tx.has(bucketKeyShares, s.KeyID+"|"+s.NodeID) {
		// Two holders wrapped the same key for the node; the first share wins.
		return nil, nil
	}
	s.CreatedAt = cmd.Time
	return s, tx.put(bucketKeyShares, s.KeyID+"|"+s.NodeID, s)
}

func applyConfirmKey(tx *Tx, cmd *Command) (any, error) {
	var p ConfirmKey
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	k, err := tx.Key(p.KeyID)
	if err != nil {
		return nil, err
	}
	if err := verifyKeyProof(k, p.NodeID, p.Signature); err != nil {
		return nil, err
	}
	for _, h := range k.Holders {
		if h == p.NodeID {
			return k, nil
		}
	}
	k.Holders = append(k.Holders, p.NodeID)
	return k, tx.put(bucketKeys, k.ID, k)
}

// Node returns the record of a cluster member.
func (t *Tx) Node(id string) (*Node, error) {
	var n Node
	ok, err := t.get(bucketNodes, id, &n)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "node %q not found", id)
	}
	return &n, nil
}

// Nodes lists every registered node.
func (t *Tx) Nodes() ([]Node, error) { return list[Node](t, bucketNodes, "") }

// Key returns a CA key record.
func (t *Tx) Key(id string) (*Key, error) {
	var k Key
	ok, err := t.get(bucketKeys, id, &k)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "key %q not found", id)
	}
	return &k, nil
}

// Keys lists every CA key record.
func (t *Tx) Keys() ([]Key, error) { return list[Key](t, bucketKeys, "") }

// KeyShare returns the share of a key for a node, if one was published.
func (t *Tx) KeyShare(keyID, nodeID string) (*KeyShare, error) {
	var s KeyShare
	ok, err := t.get(bucketKeyShares, keyID+"|"+nodeID, &s)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "no share of key %q for node %q", keyID, nodeID)
	}
	return &s, nil
}
