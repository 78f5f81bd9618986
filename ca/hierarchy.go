package ca

import (
	"context"

	"anchor/fsm"
)

// CreateOrganization commits a new organization.
func CreateOrganization(ctx context.Context, apply Applier,
	name string) (*fsm.Organization, error) {
	var org fsm.Organization
	cmd := fsm.MustCommand(fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: name})
	if err := applyDecode(ctx, apply, cmd, &org); err != nil {
		return nil, err
	}
	return &org, nil
}

// CreateRealm commits a new realm of an organization.
func CreateRealm(ctx context.Context, apply Applier, org, name string) (*fsm.Realm, error) {
	var realm fsm.Realm
	cmd := fsm.MustCommand(fsm.CmdCreateRealm, fsm.CreateRealm{Org: org, Name: name})
	if err := applyDecode(ctx, apply, cmd, &realm); err != nil {
		return nil, err
	}
	return &realm, nil
}

// AddMember gives an identity a role in an organization; for a member it
// changes the role. Demoting the organization's last admin is rejected with
// CodeFailedPrecondition.
func AddMember(ctx context.Context, apply Applier, org, identity string,
	role fsm.Role) (*fsm.Member, error) {
	var m fsm.Member
	cmd := fsm.MustCommand(fsm.CmdAddMember, fsm.AddMember{Org: org, Identity: identity, Role: role})
	if err := applyDecode(ctx, apply, cmd, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// RemoveMember removes an identity from an organization. Removing the last
// admin is rejected with CodeFailedPrecondition.
func RemoveMember(ctx context.Context, apply Applier, org, identity string) error {
	cmd := fsm.MustCommand(fsm.CmdRemoveMember, fsm.RemoveMember{Org: org, Identity: identity})
	return applyDecode(ctx, apply, cmd, nil)
}
