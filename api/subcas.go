package api

import (
	"context"

	anchorv1 "anchor/api/anchorv1"
	"anchor/ca"
	"anchor/crl"
	"anchor/fsm"
	"anchor/hsm"
)

// subCAs implements anchorv1.SubCAsServer.
type subCAs struct {
	anchorv1.UnimplementedSubCAsServer
	*Server
}

func (s *subCAs) CreateSubCA(ctx context.Context,
	req *anchorv1.CreateSubCARequest) (*anchorv1.CA, error) {
	c, err := s.authorize(ctx, writeAccess, req.Org)
	if err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org, "realm", req.Realm, "chain", req.Chain); err != nil {
		return nil, err
	}
	if err := checkName("name", "subca", req.Name); err != nil {
		return nil, err
	}
	if err := checkAlgorithm("algorithm", req.Algorithm); err != nil {
		return nil, err
	}
	if err := checkValidityDays("validity_days", req.ValidityDays); err != nil {
		return nil, err
	}
	policy, err := policyFromPB(req.Policy)
	if err != nil {
		return nil, err
	}
	var chain *fsm.Chain
	err = s.view(ctx, func(tx *fsm.Tx) error {
		chain, err = lookupChain(tx, req.Org, req.Realm, req.Chain)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	sub, err := ca.CreateSubCA(ctx, s.applierFor(c), s.keys, s.node.ID(), ca.SubCARequest{
		ChainID: chain.ID, Name: req.Name, Algorithm: hsm.Algorithm(req.Algorithm),
		Validity: days(req.ValidityDays), URLs: s.urls, Policy: policy, MakeDefault: req.MakeDefault,
	})
	if err != nil {
		return nil, toStatus(err)
	}
	s.logger.Info("SubCA created", "ca", sub.ID, "caller", c.name, "default", req.MakeDefault)
	return s.describeCA(sub.ID)
}

// describeCA reads a CA from the local state, which has applied the write
// that created or changed it.
func (s *Server) describeCA(id string) (*anchorv1.CA, error) {
	var out *anchorv1.CA
	err := s.node.State().View(func(tx *fsm.Tx) error {
		c, err := tx.CA(id)
		if err != nil {
			return err
		}
		out, err = caPB(tx, c)
		return err
	})
	return out, toStatus(err)
}

func (s *subCAs) ListSubCAs(ctx context.Context,
	req *anchorv1.ListSubCAsRequest) (*anchorv1.ListSubCAsResponse, error) {
	if _, err := s.authorize(ctx, readAccess, req.Org); err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org, "realm", req.Realm, "chain", req.Chain); err != nil {
		return nil, err
	}
	out := &anchorv1.ListSubCAsResponse{}
	err := s.view(ctx, func(tx *fsm.Tx) error {
		chain, err := lookupChain(tx, req.Org, req.Realm, req.Chain)
		if err != nil {
			return err
		}
		out.Subcas, err = subCAsPB(tx, chain)
		return err
	})
	return out, toStatus(err)
}

func (s *subCAs) RevokeSubCA(ctx context.Context,
	req *anchorv1.RevokeSubCARequest) (*anchorv1.CA, error) {
	c, err := s.authorize(ctx, writeAccess, req.Org)
	if err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org, "realm", req.Realm, "chain", req.Chain); err != nil {
		return nil, err
	}
	if err := checkName("name", "subca", req.Name); err != nil {
		return nil, err
	}
	if err := checkCAReason(req.Reason); err != nil {
		return nil, err
	}
	var sub *fsm.CA
	err = s.view(ctx, func(tx *fsm.Tx) error {
		sub, err = lookupSubCA(tx, req.Org, req.Realm, req.Chain, req.Name)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if err := crl.RevokeSubCA(ctx, s.applierFor(c), sub.ID, int(req.Reason)); err != nil {
		return nil, toStatus(err)
	}
	s.logger.Warn("SubCA revoked", "ca", sub.ID, "caller", c.name, "reason", req.Reason)
	return s.describeCA(sub.ID)
}
