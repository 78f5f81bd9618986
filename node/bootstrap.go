package node

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"anchor/ca"
	"anchor/fsm"
)

// EABFile is the content of Bootstrap.EABFile.
type EABFile struct {
	ChainID string `json:"chain_id"`
	KeyID   string `json:"key_id"`
	// HMACKey is base64url without padding, as ACME clients take it.
	HMACKey string `json:"hmac_key"`
}

// bootstrap creates the configured organization, realm and chain, and an EAB
// key, unless they exist. It runs once the node is registered.
func (n *Node) bootstrap(ctx context.Context) error {
	b := n.cfg.Bootstrap
	chainID := fsm.ChainID(b.Org, b.Realm, b.Chain)
	var exists bool
	_ = n.cluster.State().View(func(tx *fsm.Tx) error {
		_, err := tx.Chain(chainID)
		exists = err == nil
		return nil
	})
	if !exists {
		if err := n.createChain(ctx, b); err != nil {
			return fmt.Errorf("bootstrap chain %s: %w", chainID, err)
		}
	}
	if _, err := os.Stat(b.EABFile); err == nil {
		return nil
	}
	return n.createBootstrapEAB(ctx, chainID, b)
}

// bootstrapApplier records the bootstrap's commands in the audit trail
// under this node.
func (n *Node) bootstrapApplier() ca.ActorApplier {
	return ca.ActorApplier{Applier: n.cluster, Actor: "bootstrap:" + n.cfg.NodeID}
}

func (n *Node) createChain(ctx context.Context, b *Bootstrap) error {
	steps := []*fsm.Command{
		fsm.MustCommand(fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: b.Org}),
		fsm.MustCommand(fsm.CmdCreateRealm, fsm.CreateRealm{Org: b.Org, Name: b.Realm}),
	}
	for _, cmd := range steps {
		res, err := n.bootstrapApplier().Apply(ctx, cmd)
		if err != nil {
			return err
		}
		if err := res.Decode(nil); err != nil && fsm.CodeOf(err) != fsm.CodeAlreadyExists {
			return err
		}
	}
	chain, err := ca.CreateChain(ctx, n.bootstrapApplier(), n.hsm, n.cfg.NodeID, ca.ChainRequest{
		Org: b.Org, Realm: b.Realm, Name: b.Chain, URLs: ca.URLs(n.cfg.PublicURLs),
	})
	if err != nil {
		return err
	}
	n.logger.Info("chain created", "chain", chain.ID, "root", chain.RootCAID, "subca", chain.DefaultSubCAID)
	return nil
}

func (n *Node) createBootstrapEAB(ctx context.Context, chainID string, b *Bootstrap) error {
	var id [8]byte
	hmacKey := make([]byte, 32)
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	if _, err := rand.Read(hmacKey); err != nil {
		return err
	}
	key := fsm.EABKey{
		KeyID: "kid-" + hex.EncodeToString(id[:]), HMACKey: hmacKey,
		ChainID: chainID, Identifiers: b.EABIdentifiers,
	}
	res, err := n.bootstrapApplier().Apply(ctx, fsm.MustCommand(fsm.CmdCreateEAB, key))
	if err != nil {
		return err
	}
	if err := res.Decode(nil); err != nil {
		return err
	}
	out, err := json.MarshalIndent(EABFile{
		ChainID: chainID, KeyID: key.KeyID, HMACKey: base64.RawURLEncoding.EncodeToString(hmacKey),
	}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(b.EABFile), 0o700); err != nil {
		return err
	}
	tmp := b.EABFile + ".tmp"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return fmt.Errorf("write EAB file: %w", err)
	}
	if err := os.Rename(tmp, b.EABFile); err != nil {
		return fmt.Errorf("write EAB file: %w", err)
	}
	n.logger.Info("EAB key created", "chain", chainID, "key_id", key.KeyID, "file", b.EABFile)
	return nil
}
