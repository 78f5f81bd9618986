package main

import (
	"crypto/x509"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	anchorv1 "anchor/api/anchorv1"
	"anchor/fsm"
)

func newCRLCommand(a *app) *cobra.Command {
	return group("crl", "Show the CRLs the cluster publishes", a.crlShowCommand())
}

func (a *app) crlShowCommand() *cobra.Command {
	var h hierarchyFlags
	var out string
	var shard int32
	req := &anchorv1.GetCRLRequest{}
	cmd := &cobra.Command{
		Use:   "show --org ORG --realm REALM --chain CHAIN --ca CA [--delta] [--shard N]",
		Short: "Show the latest CRL of a CA, or of one shard of a SubCA, with its entries",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			req.Org, req.Realm, req.Chain = h.org, h.realm, h.chain
			if cmd.Flags().Changed("shard") {
				req.Sharded, req.Shard = true, shard
			}
			c, err := unary(a, cmd, a.api.crls.GetCRL, req)
			if err != nil {
				return err
			}
			if out != "" {
				if err := os.WriteFile(out, c.Der, 0o644); err != nil {
					return fmt.Errorf("write the --out file %s: %w", out, err)
				}
			}
			list, err := x509.ParseRevocationList(c.Der)
			if err != nil {
				return fmt.Errorf("parse the CRL of %s: %w", c.CaId, err)
			}
			return a.emit(c, func(t *table) { printCRL(t, c, list) })
		}),
	}

	h.add(cmd, 3, true)
	f := cmd.Flags()
	f.StringVar(&req.Ca, "ca", "", "CA name in the chain, such as root or issuing")
	f.BoolVar(&req.Delta, "delta", false, "show the delta CRL instead of the complete one")
	f.Int32Var(&shard, "shard", 0, "shard number of a sharded SubCA CRL")
	f.StringVar(&out, "out", "", "file to write the CRL to, DER")
	_ = cmd.MarkFlagRequired("ca")
	return cmd
}

func printCRL(t *table, c *anchorv1.CRL, list *x509.RevocationList) {
	scope := c.CaId
	if c.Sharded {
		scope = fmt.Sprintf("%s, shard %d", c.CaId, c.Shard)
	}
	kind := "complete"
	if c.Delta {
		kind = fmt.Sprintf("delta of CRL number %d", c.BaseNumber)
	}
	t.field("CA", scope)
	t.field("kind", kind)
	t.field("number", fmt.Sprint(c.Number))
	t.field("this update", c.ThisUpdate)
	t.field("next update", c.NextUpdate)
	t.field("state index", fmt.Sprint(c.SourceIndex))
	t.field("entries", fmt.Sprint(c.Entries))
	t.blank()
	t.row("SERIAL", "REVOKED AT", "REASON")
	for _, e := range list.RevokedCertificateEntries {
		t.row(fsm.SerialKey(e.SerialNumber), e.RevocationTime.UTC().Format("2006-01-02T15:04:05Z"),
			reasonName(int32(e.ReasonCode)))
	}
}
