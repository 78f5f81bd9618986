package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	anchorv1 "anchor/api/anchorv1"
)

func newCertCommand(a *app) *cobra.Command {
	return group("cert", "List, search, show, revoke and renew issued certificates",
		a.certListCommand(), a.certSearchCommand(), a.certShowCommand(),
		a.certRevokeCommand(), a.certRenewCommand())
}

func (a *app) certListCommand() *cobra.Command {
	var h hierarchyFlags
	var all bool
	req := &anchorv1.ListCertificatesRequest{}
	cmd := &cobra.Command{
		Use:   "list [--org ORG [--realm REALM [--chain CHAIN]]] [--service SERVICE]",
		Short: "List certificates, oldest first",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			req.Org, req.Realm, req.Chain = h.org, h.realm, h.chain
			resp, err := a.listCertificates(cmd, req, all)
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) { printCertificates(t, resp) })
		}),
	}

	h.add(cmd, 3, false)
	f := cmd.Flags()
	f.StringVar(&req.Service, "service", "", "service name in the organization")
	f.Int32Var(&req.PageSize, "page-size", 0, "certificates per page (default 100, at most 1000)")
	f.StringVar(&req.PageToken, "page-token", "", "next_page_token of the previous page")
	f.BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

// listCertificates fetches one page, or every page with all set.
func (a *app) listCertificates(cmd *cobra.Command, req *anchorv1.ListCertificatesRequest,
	all bool) (*anchorv1.ListCertificatesResponse, error) {
	out := &anchorv1.ListCertificatesResponse{}
	for {
		resp, err := unary(a, cmd, a.api.certs.ListCertificates, req)
		if err != nil {
			return nil, err
		}
		out.Certificates = append(out.Certificates, resp.Certificates...)
		out.NextPageToken = resp.NextPageToken
		if !all || resp.NextPageToken == "" {
			return out, nil
		}
		req.PageToken = resp.NextPageToken
	}
}

func printCertificates(t *table, resp *anchorv1.ListCertificatesResponse) {
	t.row("ID", "NAMES", "CA", "SERIAL", "NOT AFTER", "STATUS", "CREDENTIALS")
	for _, c := range resp.Certificates {
		latest := &anchorv1.Credential{}
		if n := len(c.Credentials); n > 0 {
			latest = c.Credentials[n-1]
		}
		t.row(c.Id, join(c.Names), c.CaId, latest.Serial, latest.NotAfter, credentialStatus(latest),
			fmt.Sprint(len(c.Credentials)))
	}
	if resp.NextPageToken != "" {
		t.blank()
		t.row("more: --page-token " + resp.NextPageToken)
	}
}

func credentialStatus(c *anchorv1.Credential) string {
	if c.Revoked {
		return "revoked (" + reasonName(c.Reason) + ")"
	}
	return "valid"
}

func (a *app) certSearchCommand() *cobra.Command {
	req := &anchorv1.SearchCertificatesRequest{}
	cmd := &cobra.Command{
		Use:   "search (--name NAME | --serial SERIAL) [--org ORG]",
		Short: "Find certificates by name (substring, any case) or by serial",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(a, cmd, a.api.certs.SearchCertificates, req)
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) { printCertificates(t, resp) })
		}),
	}

	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "part of a DNS name, IP address, email address or URI")
	f.StringVar(&req.Serial, "serial", "", "serial number in hex, with or without colons")
	f.StringVar(&req.Org, "org", "", "organization to search in (default all you may read)")
	f.Int32Var(&req.PageSize, "page-size", 0, "certificates per page (default 100, at most 1000)")
	f.StringVar(&req.PageToken, "page-token", "", "next_page_token of the previous page")
	cmd.MarkFlagsOneRequired("name", "serial")
	cmd.MarkFlagsMutuallyExclusive("name", "serial")
	return cmd
}

func (a *app) certShowCommand() *cobra.Command {
	req := &anchorv1.GetCertificateRequest{}
	var pemOut bool
	cmd := &cobra.Command{
		Use:   "show (ID | --serial SERIAL)",
		Short: "Show a certificate with every credential issued for it",
		Args:  cobra.MaximumNArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (req.Serial != "") {
				return usagef("give either a certificate ID or --serial")
			}
			if len(args) == 1 {
				req.Id = args[0]
			}
			cert, err := unary(a, cmd, a.api.certs.GetCertificate, req)
			if err != nil {
				return err
			}
			if pemOut {
				for _, c := range cert.Credentials {
					fmt.Fprint(a.out, c.CertificatePem)
				}
				return nil
			}
			return a.emit(cert, func(t *table) { printCertificate(t, cert) })
		}),
	}

	cmd.Flags().StringVar(&req.Serial, "serial", "", "serial number of one of its credentials, hex")
	cmd.Flags().BoolVar(&pemOut, "pem", false, "write every credential as PEM, oldest first")
	return cmd
}

func printCertificate(t *table, c *anchorv1.Certificate) {
	t.field("certificate", c.Id)
	t.field("names", join(c.Names))
	t.field("chain", c.ChainId)
	t.field("SubCA", c.CaId)
	t.field("service", c.ServiceId)
	t.field("key pair", c.KeyPairId)
	t.field("created", c.CreatedAt)
	t.blank()
	t.row("SERIAL", "NOT BEFORE", "NOT AFTER", "ISSUED", "ORDER", "STATUS", "REVOKED AT")
	for _, cred := range c.Credentials {
		t.row(cred.Serial, cred.NotBefore, cred.NotAfter, cred.IssuedAt, cred.OrderId,
			credentialStatus(cred), cred.RevokedAt)
	}
}

func (a *app) certRenewCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "renew ID",
		Short: "Issue a new credential of a certificate: same key and names, new validity",
		Args:  cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			resp, err := unary(a, cmd, a.api.certs.RenewCertificate,
				&anchorv1.RenewCertificateRequest{Id: args[0]})
			if err != nil {
				return err
			}
			if out != "" {
				if err := os.WriteFile(out, []byte(resp.ChainPem), 0o644); err != nil {
					return fmt.Errorf("write the --out file %s: %w", out, err)
				}
			}
			return a.emit(resp, func(t *table) { printCertificate(t, resp.Certificate) })
		}),
	}

	cmd.Flags().StringVar(&out, "out", "", "file to write the new certificate and its SubCA to, PEM")
	return cmd
}
