package crl

import (
	"context"
	"fmt"
	"math/big"

	"anchor/fsm"
)

// ShardOf returns the CRL shard of a leaf serial under a SubCA with shards
// shards (fsm.Tx.CRLShards): the serial modulo shards. The ca package names
// ShardURLs(Policy.CRLURLs, ShardOf(serial, shards)) in the leaf's CRL
// distribution points.
func ShardOf(serial *big.Int, shards int) int { return fsm.ShardOf(serial, shards) }

// ConfigureShards commits the CRL shard count of a SubCA: a power of two
// from 1 to fsm.MaxCRLShards. The log rejects a change once the SubCA has
// issued a certificate, because leaves name their shard.
func ConfigureShards(ctx context.Context, apply Applier, caID string, shards int) error {
	if err := fsm.ValidateCRLShards(shards); err != nil {
		return err
	}
	cmd := fsm.MustCommand(fsm.CmdConfigureCRLShards, fsm.ConfigureCRLShards{
		CAID: caID, Shards: shards,
	})
	res, err := apply.Apply(ctx, cmd)
	if err != nil {
		return fmt.Errorf("commit CRL shard count of CA %s: %w", caID, err)
	}
	return res.Decode(nil)
}
