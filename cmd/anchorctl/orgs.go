package main

import (
	"github.com/spf13/cobra"

	anchorv1 "anchor/api/anchorv1"
)

func newOrgCommand(a *app) *cobra.Command {
	return group("org", "Create and list organizations and manage their members",
		a.orgCreateCommand(), a.orgListCommand(),
		group("member", "Manage the members of an organization",
			a.memberAddCommand(), a.memberRemoveCommand(), a.memberListCommand()),
	)
}

func (a *app) orgCreateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "create NAME",
		Short: "Create an organization (cluster admins only)",
		Args:  cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			org, err := unary(a, cmd, a.api.orgs.CreateOrganization,
				&anchorv1.CreateOrganizationRequest{Name: args[0]})
			if err != nil {
				return err
			}
			return a.emit(org, func(t *table) { printOrganizations(t, org) })
		}),
	}
}

func (a *app) orgListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the organizations you may read",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(a, cmd, a.api.orgs.ListOrganizations, &anchorv1.ListOrganizationsRequest{})
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) { printOrganizations(t, resp.Organizations...) })
		}),
	}
}

func printOrganizations(t *table, orgs ...*anchorv1.Organization) {
	t.row("ORGANIZATION", "CREATED")
	for _, o := range orgs {
		t.row(o.Name, o.CreatedAt)
	}
}

func (a *app) memberAddCommand() *cobra.Command {
	var h hierarchyFlags
	var role string
	cmd := &cobra.Command{
		Use:   "add IDENTITY --org ORG --role ROLE",
		Short: "Give an identity a role in an organization, or change its role",
		Args:  cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			m, err := unary(a, cmd, a.api.orgs.AddMember,
				&anchorv1.AddMemberRequest{Org: h.org, Identity: args[0], Role: role})
			if err != nil {
				return err
			}
			return a.emit(m, func(t *table) { printMembers(t, m) })
		}),
	}

	h.add(cmd, 1, true)
	cmd.Flags().StringVar(&role, "role", "", "role: admin, member or viewer")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions(
		[]string{"admin", "member", "viewer"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (a *app) memberRemoveCommand() *cobra.Command {
	var h hierarchyFlags
	cmd := &cobra.Command{
		Use:   "remove IDENTITY --org ORG",
		Short: "Remove an identity from an organization",
		Args:  cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			resp, err := unary(a, cmd, a.api.orgs.RemoveMember,
				&anchorv1.RemoveMemberRequest{Org: h.org, Identity: args[0]})
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) { t.row("removed", args[0], "from", h.org) })
		}),
	}

	h.add(cmd, 1, true)
	return cmd
}

func (a *app) memberListCommand() *cobra.Command {
	var h hierarchyFlags
	cmd := &cobra.Command{
		Use:   "list --org ORG",
		Short: "List the members of an organization",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(a, cmd, a.api.orgs.ListMembers, &anchorv1.ListMembersRequest{Org: h.org})
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) { printMembers(t, resp.Members...) })
		}),
	}

	h.add(cmd, 1, true)
	return cmd
}

func printMembers(t *table, members ...*anchorv1.OrganizationMember) {
	t.row("ORGANIZATION", "IDENTITY", "ROLE", "ADDED", "UPDATED")
	for _, m := range members {
		t.row(m.Org, m.Identity, m.Role, m.AddedAt, m.UpdatedAt)
	}
}

func newRealmCommand(a *app) *cobra.Command {
	return group("realm", "Create and list the realms of an organization",
		a.realmCreateCommand(), a.realmListCommand())
}

func (a *app) realmCreateCommand() *cobra.Command {
	var h hierarchyFlags
	cmd := &cobra.Command{
		Use:   "create NAME --org ORG",
		Short: "Create a realm in an organization",
		Args:  cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			r, err := unary(a, cmd, a.api.realms.CreateRealm,
				&anchorv1.CreateRealmRequest{Org: h.org, Name: args[0]})
			if err != nil {
				return err
			}
			return a.emit(r, func(t *table) { printRealms(t, r) })
		}),
	}

	h.add(cmd, 1, true)
	return cmd
}

func (a *app) realmListCommand() *cobra.Command {
	var h hierarchyFlags
	cmd := &cobra.Command{
		Use:   "list --org ORG",
		Short: "List the realms of an organization",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(a, cmd, a.api.realms.ListRealms, &anchorv1.ListRealmsRequest{Org: h.org})
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) { printRealms(t, resp.Realms...) })
		}),
	}

	h.add(cmd, 1, true)
	return cmd
}

func printRealms(t *table, realms ...*anchorv1.Realm) {
	t.row("ORGANIZATION", "REALM", "CREATED")
	for _, r := range realms {
		t.row(r.Org, r.Name, r.CreatedAt)
	}
}
