package main

import (
	"strings"

	"github.com/spf13/cobra"

	anchorv1 "anchor/api/anchorv1"
)

func newServiceCommand(a *app) *cobra.Command {
	return group("service", "Create, list and show the services of an organization",
		a.serviceCreateCommand(), a.serviceListCommand(), a.serviceShowCommand())
}

func (a *app) serviceCreateCommand() *cobra.Command {
	var h hierarchyFlags
	var realms []string
	req := &anchorv1.CreateServiceRequest{}
	cmd := &cobra.Command{
		Use:   "create NAME --org ORG --identifier ID --realm REALM:CHAIN[:SUBCA]",
		Short: "Create a service with one EAB key per realm; prints the HMAC keys once",
		Args:  cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			req.Org, req.Name = h.org, args[0]
			for _, r := range realms {
				spec, err := parseServiceRealm(r)
				if err != nil {
					return err
				}
				req.Realms = append(req.Realms, spec)
			}
			resp, err := unary(a, cmd, a.api.services.CreateService, req)
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) {
				printServices(t, resp.Service)
				t.blank()
				printEABSecrets(t, resp.EabKeys...)
			})
		}),
	}

	h.add(cmd, 1, true)
	f := cmd.Flags()
	f.StringSliceVar(&req.Identifiers, "identifier", nil, "a name the service may request: "+
		"DNS name, *.domain, IP address or prefix, email address or URI (repeatable)")
	f.StringArrayVar(&realms, "realm", nil, "realm, chain and optional SubCA the service "+
		"uses there, as REALM:CHAIN[:SUBCA] (repeatable)")
	f.BoolVar(&req.PreAuthorize, "pre-authorize", false, "let the service's ACME accounts skip "+
		"challenges for its identifiers")
	_ = cmd.MarkFlagRequired("identifier")
	_ = cmd.MarkFlagRequired("realm")
	return cmd
}

func parseServiceRealm(s string) (*anchorv1.ServiceRealmSpec, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, usagef("invalid --realm %q: use REALM:CHAIN or REALM:CHAIN:SUBCA", s)
	}
	spec := &anchorv1.ServiceRealmSpec{Realm: parts[0], Chain: parts[1]}
	if len(parts) == 3 {
		spec.Subca = parts[2]
	}
	return spec, nil
}

func (a *app) serviceListCommand() *cobra.Command {
	var h hierarchyFlags
	cmd := &cobra.Command{
		Use:   "list --org ORG",
		Short: "List the services of an organization",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(a, cmd, a.api.services.ListServices,
				&anchorv1.ListServicesRequest{Org: h.org})
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) { printServices(t, resp.Services...) })
		}),
	}

	h.add(cmd, 1, true)
	return cmd
}

func (a *app) serviceShowCommand() *cobra.Command {
	var h hierarchyFlags
	cmd := &cobra.Command{
		Use:   "show NAME --org ORG",
		Short: "Show a service",
		Args:  cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			svc, err := unary(a, cmd, a.api.services.GetService,
				&anchorv1.GetServiceRequest{Org: h.org, Name: args[0]})
			if err != nil {
				return err
			}
			return a.emit(svc, func(t *table) { printServices(t, svc) })
		}),
	}

	h.add(cmd, 1, true)
	return cmd
}

func printServices(t *table, services ...*anchorv1.Service) {
	t.row("SERVICE", "IDENTIFIERS", "REALM", "CHAIN", "SUBCA", "EAB KEYS")
	for _, s := range services {
		if len(s.Realms) == 0 {
			t.row(s.Id, join(s.Identifiers), "", "", "", "")
		}
		for _, r := range s.Realms {
			t.row(s.Id, join(s.Identifiers), r.Realm, r.ChainId, r.SubcaId, join(r.EabKeyIds))
		}
	}
}

func newEABCommand(a *app) *cobra.Command {
	return group("eab", "Create and list External Account Binding keys for ACME clients",
		a.eabCreateCommand(), a.eabListCommand())
}

func (a *app) eabCreateCommand() *cobra.Command {
	var h hierarchyFlags
	req := &anchorv1.CreateEABKeyRequest{}
	cmd := &cobra.Command{
		Use:   "create --org ORG --realm REALM --chain CHAIN",
		Short: "Create an EAB key for a chain; prints its HMAC key once",
		Long: "Create an EAB key for a chain. The HMAC key is printed once, base64url without " +
			"padding as ACME clients take it (certbot --eab-hmac-key); no later call shows it.",
		Args: cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			req.Org, req.Realm, req.Chain = h.org, h.realm, h.chain
			secret, err := unary(a, cmd, a.api.eab.CreateEABKey, req)
			if err != nil {
				return err
			}
			return a.emit(secret, func(t *table) { printEABSecrets(t, secret) })
		}),
	}

	h.add(cmd, 3, true)
	f := cmd.Flags()
	f.StringVar(&req.Subca, "subca", "", "SubCA name in the chain (default the chain's default)")
	f.StringSliceVar(&req.Identifiers, "identifier", nil, "DNS name, *.domain or IP prefix that the "+
		"bound account gets without challenges (repeatable)")
	return cmd
}

func printEABSecrets(t *table, secrets ...*anchorv1.EABSecret) {
	t.row("KEY ID", "CHAIN", "SUBCA", "HMAC KEY")
	for _, s := range secrets {
		t.row(s.Key.GetKeyId(), s.Key.GetChainId(), s.Key.GetSubcaId(), s.HmacKey)
	}
}

func (a *app) eabListCommand() *cobra.Command {
	var h hierarchyFlags
	cmd := &cobra.Command{
		Use:   "list --org ORG [--realm REALM [--chain CHAIN]]",
		Short: "List EAB keys, without their HMAC keys",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(a, cmd, a.api.eab.ListEABKeys,
				&anchorv1.ListEABKeysRequest{Org: h.org, Realm: h.realm, Chain: h.chain})
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) {
				t.row("KEY ID", "CHAIN", "SUBCA", "SERVICE", "IDENTIFIERS", "ACCOUNT", "CREATED")
				for _, k := range resp.Keys {
					t.row(k.KeyId, k.ChainId, k.SubcaId, k.ServiceId, join(k.Identifiers), k.AccountId,
						k.CreatedAt)
				}
			})
		}),
	}

	h.add(cmd, 3, false)
	_ = cmd.MarkFlagRequired("org")
	return cmd
}
