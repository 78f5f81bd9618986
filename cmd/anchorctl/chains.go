package main

import (
	"fmt"

	"github.com/spf13/cobra"

	anchorv1 "anchor/api/anchorv1"
)

func newChainCommand(a *app) *cobra.Command {
	return group("chain", "Create, list and show the chains of a realm",
		a.chainCreateCommand(), a.chainListCommand(), a.chainShowCommand())
}

func (a *app) chainCreateCommand() *cobra.Command {
	var h hierarchyFlags
	var p policyFlags
	req := &anchorv1.CreateChainRequest{}
	cmd := &cobra.Command{
		Use:   "create NAME --org ORG --realm REALM",
		Short: "Create a chain: a root and its first SubCA, keys generated in the node's HSM",
		Long: "Create a chain. The node that receives the call generates the root and SubCA keys " +
			"in its HSM and signs both certificates there; the other nodes then receive the keys, " +
			"wrapped. 'anchorctl cluster status' shows when every node holds them.",
		Args: cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			policy, err := p.policy(cmd)
			if err != nil {
				return err
			}
			req.Org, req.Realm, req.Name, req.Policy = h.org, h.realm, args[0], policy
			chain, err := unary(a, cmd, a.api.chains.CreateChain, req)
			if err != nil {
				return err
			}
			return a.emit(chain, func(t *table) { printChain(t, chain) })
		}),
	}

	h.add(cmd, 2, true)
	f := cmd.Flags()
	f.StringVar(&req.SubcaName, "subca-name", "", "name of the first SubCA (default issuing)")
	f.StringVar(&req.RootAlgorithm, "root-algorithm", "", "root key algorithm (default ecdsa-p384)")
	f.StringVar(&req.SubcaAlgorithm, "subca-algorithm", "",
		"SubCA key algorithm (default ecdsa-p256)")
	f.Uint32Var(&req.RootValidityDays, "root-validity-days", 0, "root certificate lifetime in days "+
		"(default 20 years)")
	f.Uint32Var(&req.SubcaValidityDays, "subca-validity-days", 0,
		"SubCA certificate lifetime in days (default 10 years)")
	completeAlgorithms(cmd, "root-algorithm", "subca-algorithm")
	p.add(cmd)
	return cmd
}

func completeAlgorithms(cmd *cobra.Command, flags ...string) {
	algs := []string{"ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519"}
	for _, f := range flags {
		_ = cmd.RegisterFlagCompletionFunc(f,
			cobra.FixedCompletions(algs, cobra.ShellCompDirectiveNoFileComp))
	}
}

func (a *app) chainListCommand() *cobra.Command {
	var h hierarchyFlags
	cmd := &cobra.Command{
		Use:   "list --org ORG [--realm REALM]",
		Short: "List the chains of an organization or of one realm",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(a, cmd, a.api.chains.ListChains,
				&anchorv1.ListChainsRequest{Org: h.org, Realm: h.realm})
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) {
				t.row("CHAIN", "ROOT", "SUBCAS", "DEFAULT SUBCA", "CREATED")
				for _, c := range resp.Chains {
					var subs []string
					for _, s := range c.Subcas {
						subs = append(subs, s.Name)
					}
					t.row(c.Id, c.Root.GetName(), join(subs), c.DefaultSubcaId, c.CreatedAt)
				}
			})
		}),
	}

	h.add(cmd, 1, true)
	cmd.Flags().StringVar(&h.realm, "realm", "",
		"realm name in the organization (default all realms)")
	return cmd
}

func (a *app) chainShowCommand() *cobra.Command {
	var h hierarchyFlags
	var pemOut bool
	cmd := &cobra.Command{
		Use:   "show NAME --org ORG --realm REALM",
		Short: "Show a chain with its CAs",
		Args:  cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			chain, err := unary(a, cmd, a.api.chains.GetChain,
				&anchorv1.GetChainRequest{Org: h.org, Realm: h.realm, Name: args[0]})
			if err != nil {
				return err
			}
			if pemOut {
				return printChainPEM(a, chain)
			}
			return a.emit(chain, func(t *table) { printChain(t, chain) })
		}),
	}

	h.add(cmd, 2, true)
	cmd.Flags().BoolVar(&pemOut, "pem", false, "write the CA certificates as PEM, root first")
	return cmd
}

func printChainPEM(a *app, chain *anchorv1.Chain) error {
	if _, err := fmt.Fprint(a.out, chain.Root.GetCertificatePem()); err != nil {
		return err
	}
	for _, s := range chain.Subcas {
		if _, err := fmt.Fprint(a.out, s.CertificatePem); err != nil {
			return err
		}
	}
	return nil
}

func printChain(t *table, c *anchorv1.Chain) {
	t.field("chain", c.Id)
	t.field("default SubCA", c.DefaultSubcaId)
	t.field("created", c.CreatedAt)
	t.blank()
	printCAs(t, append([]*anchorv1.CA{c.Root}, c.Subcas...)...)
}

func printCAs(t *table, cas ...*anchorv1.CA) {
	t.row("CA", "KIND", "SERIAL", "NOT AFTER", "KEY", "HOLDERS", "REVOKED")
	for _, ca := range cas {
		revoked := "no"
		if ca.Revoked {
			revoked = fmt.Sprintf("%s (%s)", ca.RevokedAt, reasonName(ca.RevocationReason))
		}
		t.row(ca.Id, ca.Kind, ca.Serial, ca.NotAfter, ca.KeyId, join(ca.Holders), revoked)
	}
}
