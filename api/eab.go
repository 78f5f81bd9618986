package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	anchorv1 "anchor/api/anchorv1"
	"anchor/fsm"
)

// eabKeys implements anchorv1.EABKeysServer.
type eabKeys struct {
	anchorv1.UnimplementedEABKeysServer
	*Server
}

// CreateEABKey generates the key ID and a 256-bit HMAC key on this node and
// commits them. The HMAC key is replicated, because any node may verify an
// account's binding, and is returned in this response only. Identifiers
// that the key's SubCA could not sign are rejected with INVALID_ARGUMENT.
func (s *eabKeys) CreateEABKey(ctx context.Context,
	req *anchorv1.CreateEABKeyRequest) (*anchorv1.EABSecret, error) {
	c, err := s.authorize(ctx, writeAccess, req.Org)
	if err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org, "realm", req.Realm, "chain", req.Chain); err != nil {
		return nil, err
	}
	if err := checkOptionalName("subca", req.Subca); err != nil {
		return nil, err
	}
	ids, err := normalizeIdentifiers("identifiers", req.Identifiers)
	if err != nil {
		return nil, err
	}
	key := fsm.EABKey{Identifiers: ids}
	err = s.view(ctx, func(tx *fsm.Tx) error {
		chain, err := lookupChain(tx, req.Org, req.Realm, req.Chain)
		if err != nil {
			return err
		}
		key.ChainID = chain.ID
		sub, err := eabSubCA(tx, chain, req)
		if err != nil {
			return err
		}
		if req.Subca != "" {
			key.SubCAID = sub.ID
		}
		return fsm.CheckIdentifiersAllowed(ids, sub)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if key.KeyID, key.HMACKey, err = newEABKey(); err != nil {
		return nil, toStatus(err)
	}
	var stored fsm.EABKey
	if err := s.apply(ctx, c, fsm.MustCommand(fsm.CmdCreateEAB, key), &stored); err != nil {
		return nil, toStatus(err)
	}
	s.logger.Info("EAB key created", "key_id", stored.KeyID, "chain", stored.ChainID,
		"caller", c.name)
	return eabSecretPB(&stored), nil
}

// eabSubCA returns the SubCA that signs for accounts bound by a new key:
// the one the request names, else the chain's default.
//
// NOTE: a key without a SubCA follows the chain's default SubCA, which
// subca.create may change later, so its identifiers are checked against
// the default at creation only.
func eabSubCA(tx *fsm.Tx, chain *fsm.Chain, req *anchorv1.CreateEABKeyRequest) (*fsm.CA, error) {
	if req.Subca != "" {
		return lookupSubCA(tx, req.Org, req.Realm, req.Chain, req.Subca)
	}
	return tx.CA(chain.DefaultSubCAID)
}

// newEABKey returns a random key ID and a 256-bit HMAC key.
func newEABKey() (string, []byte, error) {
	id := make([]byte, 12)
	hmacKey := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return "", nil, fmt.Errorf("read EAB key ID randomness: %w", err)
	}
	if _, err := rand.Read(hmacKey); err != nil {
		return "", nil, fmt.Errorf("read EAB HMAC key randomness: %w", err)
	}
	return "kid-" + hex.EncodeToString(id), hmacKey, nil
}

func (s *eabKeys) ListEABKeys(ctx context.Context,
	req *anchorv1.ListEABKeysRequest) (*anchorv1.ListEABKeysResponse, error) {
	if _, err := s.authorize(ctx, readAccess, req.Org); err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org); err != nil {
		return nil, err
	}
	if err := checkOptionalName("realm", req.Realm); err != nil {
		return nil, err
	}
	if err := checkOptionalName("chain", req.Chain); err != nil {
		return nil, err
	}
	if req.Chain != "" && req.Realm == "" {
		return nil, invalid("chain %q needs its realm", req.Chain)
	}
	out := &anchorv1.ListEABKeysResponse{}
	err := s.view(ctx, func(tx *fsm.Tx) error {
		chainIDs, err := eabChains(tx, req)
		if err != nil {
			return err
		}
		for _, id := range chainIDs {
			keys, err := tx.EABKeys(id)
			if err != nil {
				return err
			}
			for i := range keys {
				out.Keys = append(out.Keys, eabKeyPB(&keys[i]))
			}
		}
		return nil
	})
	return out, toStatus(err)
}

// eabChains returns the IDs of the chains whose keys a list request names.
func eabChains(tx *fsm.Tx, req *anchorv1.ListEABKeysRequest) ([]string, error) {
	if req.Chain != "" {
		chain, err := lookupChain(tx, req.Org, req.Realm, req.Chain)
		if err != nil {
			return nil, err
		}
		return []string{chain.ID}, nil
	}
	prefix, err := chainPrefix(tx, req.Org, req.Realm)
	if err != nil {
		return nil, err
	}
	list, err := tx.Chains(prefix)
	ids := make([]string, 0, len(list))
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	return ids, err
}
