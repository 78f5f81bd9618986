package main

import (
	"github.com/spf13/cobra"

	anchorv1 "anchor/api/anchorv1"
)

func newSubCACommand(a *app) *cobra.Command {
	return group("subca", "Create, list and revoke the SubCAs of a chain",
		a.subCACreateCommand(), a.subCAListCommand(), a.subCARevokeCommand())
}

func (a *app) subCACreateCommand() *cobra.Command {
	var h hierarchyFlags
	var p policyFlags
	req := &anchorv1.CreateSubCARequest{}
	cmd := &cobra.Command{
		Use:   "create NAME --org ORG --realm REALM --chain CHAIN",
		Short: "Create a SubCA, its key generated in the node's HSM and signed by the chain's root",
		Long: "Create a SubCA. The node that receives the call generates the SubCA key in its HSM " +
			"and signs the certificate with the chain's root key, which its HSM must hold.",
		Args: cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			policy, err := p.policy(cmd)
			if err != nil {
				return err
			}
			req.Org, req.Realm, req.Chain, req.Name, req.Policy = h.org, h.realm, h.chain, args[0], policy
			sub, err := unary(a, cmd, a.api.subCAs.CreateSubCA, req)
			if err != nil {
				return err
			}
			return a.emit(sub, func(t *table) { printCAs(t, sub) })
		}),
	}

	h.add(cmd, 3, true)
	f := cmd.Flags()
	f.StringVar(&req.Algorithm, "algorithm", "", "SubCA key algorithm (default ecdsa-p256)")
	f.Uint32Var(&req.ValidityDays, "validity-days", 0,
		"certificate lifetime in days (default 10 years, at most the root's)")
	f.BoolVar(&req.MakeDefault, "default", false, "make the SubCA the chain's default")
	completeAlgorithms(cmd, "algorithm")
	p.add(cmd)
	return cmd
}

func (a *app) subCAListCommand() *cobra.Command {
	var h hierarchyFlags
	cmd := &cobra.Command{
		Use:   "list --org ORG --realm REALM --chain CHAIN",
		Short: "List the SubCAs of a chain",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(a, cmd, a.api.subCAs.ListSubCAs,
				&anchorv1.ListSubCAsRequest{Org: h.org, Realm: h.realm, Chain: h.chain})
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) { printCAs(t, resp.Subcas...) })
		}),
	}

	h.add(cmd, 3, true)
	return cmd
}

func (a *app) subCARevokeCommand() *cobra.Command {
	var h hierarchyFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke NAME --org ORG --realm REALM --chain CHAIN [--reason REASON]",
		Short: "Revoke a SubCA certificate",
		Args:  cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			code, err := parseReason(reason)
			if err != nil {
				return err
			}
			sub, err := unary(a, cmd, a.api.subCAs.RevokeSubCA, &anchorv1.RevokeSubCARequest{
				Org: h.org, Realm: h.realm, Chain: h.chain, Name: args[0], Reason: code,
			})
			if err != nil {
				return err
			}
			return a.emit(sub, func(t *table) { printCAs(t, sub) })
		}),
	}

	h.add(cmd, 3, true)
	addReasonFlag(cmd, &reason, "cACompromise, keyCompromise, superseded, ...")
	return cmd
}
