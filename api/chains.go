package api

import (
	"context"
	"time"

	anchorv1 "anchor/api/anchorv1"
	"anchor/ca"
	"anchor/fsm"
	"anchor/hsm"
)

// chains implements anchorv1.ChainsServer.
type chains struct {
	anchorv1.UnimplementedChainsServer
	*Server
}

// CreateChain checks the request and the hierarchy before any key is
// generated, so that a rejected request leaves no key in the HSM.
func (s *chains) CreateChain(ctx context.Context,
	req *anchorv1.CreateChainRequest) (*anchorv1.Chain, error) {
	c, err := s.authorize(ctx, writeAccess, req.Org)
	if err != nil {
		return nil, err
	}
	chainReq, err := s.chainRequest(req)
	if err != nil {
		return nil, err
	}
	err = s.view(ctx, func(tx *fsm.Tx) error {
		if _, err := lookupRealm(tx, req.Org, req.Realm); err != nil {
			return err
		}
		if _, err := tx.Chain(fsm.ChainID(req.Org, req.Realm, req.Name)); err == nil {
			return fsm.Errorf(fsm.CodeAlreadyExists,
				"chain %q already exists in realm %q of organization %q", req.Name, req.Realm, req.Org)
		}
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	chain, err := ca.CreateChain(ctx, s.applierFor(c), s.keys, s.node.ID(), *chainReq)
	if err != nil {
		return nil, toStatus(err)
	}
	s.logger.Info("chain created", "chain", chain.ID, "caller", c.name, "root", chain.RootCAID,
		"subca", chain.DefaultSubCAID)
	var out *anchorv1.Chain
	err = s.node.State().View(func(tx *fsm.Tx) error {
		out, err = chainPB(tx, chain)
		return err
	})
	return out, toStatus(err)
}

func (s *chains) chainRequest(req *anchorv1.CreateChainRequest) (*ca.ChainRequest, error) {
	if err := checkNames("org", req.Org, "realm", req.Realm); err != nil {
		return nil, err
	}
	if err := checkName("name", "chain", req.Name); err != nil {
		return nil, err
	}
	if err := checkOptionalName("subca_name", req.SubcaName); err != nil {
		return nil, err
	}
	if err := checkAlgorithm("root_algorithm", req.RootAlgorithm); err != nil {
		return nil, err
	}
	if err := checkAlgorithm("subca_algorithm", req.SubcaAlgorithm); err != nil {
		return nil, err
	}
	if err := checkValidityDays("root_validity_days", req.RootValidityDays); err != nil {
		return nil, err
	}
	if err := checkValidityDays("subca_validity_days", req.SubcaValidityDays); err != nil {
		return nil, err
	}
	policy, err := policyFromPB(req.Policy)
	if err != nil {
		return nil, err
	}
	return &ca.ChainRequest{
		Org: req.Org, Realm: req.Realm, Name: req.Name, SubCAName: req.SubcaName,
		RootAlgorithm:  hsm.Algorithm(req.RootAlgorithm),
		SubCAAlgorithm: hsm.Algorithm(req.SubcaAlgorithm),
		URLs:           s.urls,
		Policy:         policy,
		RootValidity:   days(req.RootValidityDays),
		SubCAValidity:  days(req.SubcaValidityDays),
	}, nil
}

func days(n uint32) time.Duration { return time.Duration(n) * 24 * time.Hour }

// maxValidityDays bounds a CA certificate's lifetime, as the ceremony
// specification does. A day count beyond it would also overflow time.Duration
// near 106,751 days.
const maxValidityDays = 36500

// checkValidityDays rejects a CA lifetime of more than maxValidityDays. Zero
// selects the default.
func checkValidityDays(field string, n uint32) error {
	if n > maxValidityDays {
		return invalid("%s %d is out of range: at most %d (100 years), or 0 for the default",
			field, n, maxValidityDays)
	}
	return nil
}

func (s *chains) ListChains(ctx context.Context,
	req *anchorv1.ListChainsRequest) (*anchorv1.ListChainsResponse, error) {
	if _, err := s.authorize(ctx, readAccess, req.Org); err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org); err != nil {
		return nil, err
	}
	if err := checkOptionalName("realm", req.Realm); err != nil {
		return nil, err
	}
	out := &anchorv1.ListChainsResponse{}
	err := s.view(ctx, func(tx *fsm.Tx) error {
		prefix, err := chainPrefix(tx, req.Org, req.Realm)
		if err != nil {
			return err
		}
		list, err := tx.Chains(prefix)
		if err != nil {
			return err
		}
		for i := range list {
			pb, err := chainPB(tx, &list[i])
			if err != nil {
				return err
			}
			out.Chains = append(out.Chains, pb)
		}
		return nil
	})
	return out, toStatus(err)
}

// chainPrefix returns the chain ID prefix of an organization or of one of
// its realms, after checking that they exist.
func chainPrefix(tx *fsm.Tx, org, realm string) (string, error) {
	if realm == "" {
		_, err := lookupOrg(tx, org)
		return org + "/", err
	}
	_, err := lookupRealm(tx, org, realm)
	return org + "/" + realm + "/", err
}

func (s *chains) GetChain(ctx context.Context,
	req *anchorv1.GetChainRequest) (*anchorv1.Chain, error) {
	if _, err := s.authorize(ctx, readAccess, req.Org); err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org, "realm", req.Realm); err != nil {
		return nil, err
	}
	if err := checkName("name", "chain", req.Name); err != nil {
		return nil, err
	}
	var out *anchorv1.Chain
	err := s.view(ctx, func(tx *fsm.Tx) error {
		chain, err := lookupChain(tx, req.Org, req.Realm, req.Name)
		if err != nil {
			return err
		}
		out, err = chainPB(tx, chain)
		return err
	})
	return out, toStatus(err)
}
