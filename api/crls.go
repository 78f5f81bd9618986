package api

import (
	"context"

	anchorv1 "anchor/api/anchorv1"
	"anchor/fsm"
)

// crls implements anchorv1.CRLsServer.
type crls struct {
	anchorv1.UnimplementedCRLsServer
	*Server
}

func (s *crls) GetCRL(ctx context.Context, req *anchorv1.GetCRLRequest) (*anchorv1.CRL, error) {
	if _, err := s.authorize(ctx, readAccess, req.Org); err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org, "realm", req.Realm, "chain", req.Chain); err != nil {
		return nil, err
	}
	if err := checkName("ca", "CA", req.Ca); err != nil {
		return nil, err
	}
	if req.Shard < 0 || req.Shard >= fsm.MaxCRLShards {
		return nil, invalid("shard %d is out of range 0 to %d", req.Shard, fsm.MaxCRLShards-1)
	}
	var out *anchorv1.CRL
	err := s.view(ctx, func(tx *fsm.Tx) error {
		ca, err := lookupCA(tx, req.Org, req.Realm, req.Chain, req.Ca)
		if err != nil {
			return err
		}
		scope := fsm.FullScope(ca.ID)
		if req.Sharded {
			scope = fsm.ShardScope(ca.ID, int(req.Shard))
		}
		c, err := tx.CRL(scope, req.Delta)
		if err == nil {
			out = crlPB(c)
		}
		return err
	})
	return out, toStatus(err)
}
