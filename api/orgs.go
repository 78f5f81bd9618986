package api

import (
	"context"

	anchorv1 "anchor/api/anchorv1"
	"anchor/fsm"
)

// organizations implements anchorv1.OrganizationsServer.
type organizations struct {
	anchorv1.UnimplementedOrganizationsServer
	*Server
}

func (s *organizations) CreateOrganization(ctx context.Context,
	req *anchorv1.CreateOrganizationRequest) (*anchorv1.Organization, error) {
	c, err := s.authorize(ctx, clusterAccess, "")
	if err != nil {
		return nil, err
	}
	if err := checkName("name", "organization", req.Name); err != nil {
		return nil, err
	}
	var org fsm.Organization
	cmd := fsm.MustCommand(fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: req.Name})
	if err := s.apply(ctx, c, cmd, &org); err != nil {
		return nil, toStatus(err)
	}
	return organizationPB(&org), nil
}

func (s *organizations) ListOrganizations(ctx context.Context,
	_ *anchorv1.ListOrganizationsRequest) (*anchorv1.ListOrganizationsResponse, error) {
	c, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	out := &anchorv1.ListOrganizationsResponse{}
	err = s.view(ctx, func(tx *fsm.Tx) error {
		orgs, err := tx.Organizations()
		if err != nil {
			return err
		}
		for i := range orgs {
			if c.allows(readAccess, orgs[i].Name) {
				out.Organizations = append(out.Organizations, organizationPB(&orgs[i]))
			}
		}
		return nil
	})
	return out, toStatus(err)
}

func (s *organizations) AddMember(ctx context.Context,
	req *anchorv1.AddMemberRequest) (*anchorv1.OrganizationMember, error) {
	c, err := s.authorize(ctx, writeAccess, req.Org)
	if err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org); err != nil {
		return nil, err
	}
	if err := fsm.ValidateIdentity(req.Identity); err != nil {
		return nil, invalid("identity: %v", err)
	}
	role := fsm.Role(req.Role)
	if !role.Valid() {
		return nil, invalid("role: invalid role %q: use admin, member or viewer", req.Role)
	}
	var m fsm.Member
	cmd := fsm.MustCommand(fsm.CmdAddMember,
		fsm.AddMember{Org: req.Org, Identity: req.Identity, Role: role})
	if err := s.apply(ctx, c, cmd, &m); err != nil {
		return nil, toStatus(err)
	}
	return memberPB(&m), nil
}

func (s *organizations) RemoveMember(ctx context.Context,
	req *anchorv1.RemoveMemberRequest) (*anchorv1.RemoveMemberResponse, error) {
	c, err := s.authorize(ctx, writeAccess, req.Org)
	if err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org); err != nil {
		return nil, err
	}
	if err := fsm.ValidateIdentity(req.Identity); err != nil {
		return nil, invalid("identity: %v", err)
	}
	cmd := fsm.MustCommand(fsm.CmdRemoveMember,
		fsm.RemoveMember{Org: req.Org, Identity: req.Identity})
	if err := s.apply(ctx, c, cmd, nil); err != nil {
		return nil, toStatus(err)
	}
	return &anchorv1.RemoveMemberResponse{}, nil
}

func (s *organizations) ListMembers(ctx context.Context,
	req *anchorv1.ListMembersRequest) (*anchorv1.ListMembersResponse, error) {
	if _, err := s.authorize(ctx, readAccess, req.Org); err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org); err != nil {
		return nil, err
	}
	out := &anchorv1.ListMembersResponse{}
	err := s.view(ctx, func(tx *fsm.Tx) error {
		if _, err := lookupOrg(tx, req.Org); err != nil {
			return err
		}
		members, err := tx.Members(req.Org)
		for i := range members {
			out.Members = append(out.Members, memberPB(&members[i]))
		}
		return err
	})
	return out, toStatus(err)
}

// realms implements anchorv1.RealmsServer.
type realms struct {
	anchorv1.UnimplementedRealmsServer
	*Server
}

func (s *realms) CreateRealm(ctx context.Context,
	req *anchorv1.CreateRealmRequest) (*anchorv1.Realm, error) {
	c, err := s.authorize(ctx, writeAccess, req.Org)
	if err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org); err != nil {
		return nil, err
	}
	if err := checkName("name", "realm", req.Name); err != nil {
		return nil, err
	}
	var r fsm.Realm
	cmd := fsm.MustCommand(fsm.CmdCreateRealm, fsm.CreateRealm{Org: req.Org, Name: req.Name})
	if err := s.apply(ctx, c, cmd, &r); err != nil {
		return nil, toStatus(err)
	}
	return realmPB(&r), nil
}

func (s *realms) ListRealms(ctx context.Context,
	req *anchorv1.ListRealmsRequest) (*anchorv1.ListRealmsResponse, error) {
	if _, err := s.authorize(ctx, readAccess, req.Org); err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org); err != nil {
		return nil, err
	}
	out := &anchorv1.ListRealmsResponse{}
	err := s.view(ctx, func(tx *fsm.Tx) error {
		if _, err := lookupOrg(tx, req.Org); err != nil {
			return err
		}
		list, err := tx.Realms(req.Org)
		for i := range list {
			out.Realms = append(out.Realms, realmPB(&list[i]))
		}
		return err
	})
	return out, toStatus(err)
}
