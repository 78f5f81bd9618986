package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"anchor/cluster"
	"anchor/fsm"
)

func newAdminCommand(a *app) *cobra.Command {
	return group("admin", "Manage admin credentials", a.issueCertCommand())
}

func (a *app) issueCertCommand() *cobra.Command {
	var caDir, name, role, out string
	cmd := &cobra.Command{
		Use:   "issue-cert --ca-dir DIR --name NAME --role ROLE [--out DIR]",
		Short: "Issue an admin certificate from the cluster-internal CA's files",
		Long: "Issue an admin client certificate and key from the cluster-internal CA in --ca-dir " +
			"(ca.pem and ca-key.pem, as make run and anchor-setup create them). It runs locally " +
			"and calls no node. The role is cluster-admin (every call), read-only (read calls " +
			"only) or org-admin/ORG (every call on organization ORG). The files go to --out, by " +
			"default to admin-NAME in the directory of the connection file (data/admin-NAME " +
			"for make run's data/cluster.json); existing files are not replaced. The key is " +
			"written with mode 0600.",
		Args: cobra.NoArgs,
		RunE: a.runE(func(_ *cobra.Command, _ []string) error {
			if err := checkAdminName(name); err != nil {
				return err
			}
			if err := checkRole(role); err != nil {
				return err
			}
			dir, err := a.adminOutDir(out, name)
			if err != nil {
				return err
			}
			ca, err := cluster.LoadInternalCA(caDir)
			if err != nil {
				return usagef("load the internal CA from --ca-dir %s: %v", caDir, err)
			}
			cfg, err := ca.IssueAdmin(caDir, dir, name, role)
			if err != nil {
				return fmt.Errorf("issue admin certificate: %w", err)
			}
			return a.printAdminFiles(cfg)
		}),
	}

	f := cmd.Flags()
	f.StringVar(&caDir, "ca-dir", "", "directory of the cluster-internal CA")
	f.StringVar(&name, "name", "", "the administrator's name, the certificate's common name")
	f.StringVar(&role, "role", "", "cluster-admin, read-only or org-admin/ORG")
	f.StringVar(&out, "out", "", "directory for admin.pem and admin-key.pem "+
		"(default admin-NAME beside the --connection file)")
	for _, req := range []string{"ca-dir", "name", "role"} {
		_ = cmd.MarkFlagRequired(req)
	}
	_ = cmd.MarkFlagDirname("ca-dir")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions(
		[]string{cluster.RoleClusterAdmin, cluster.RoleReadOnly, cluster.RoleOrgAdminPrefix},
		cobra.ShellCompDirectiveNoFileComp|cobra.ShellCompDirectiveNoSpace))
	return cmd
}

// adminOutDir returns the directory for the admin files: out, or else
// admin-NAME in the directory of the connection file, which make run keeps
// outside version control. It rejects a directory that already holds them,
// so that no key in use is replaced.
func (a *app) adminOutDir(out, name string) (string, error) {
	if out == "" {
		if strings.ContainsAny(name, `/\`) {
			return "", usagef("--name %q contains a path separator: set --out", name)
		}
		dataDir := filepath.Dir(a.connFile)
		if info, err := os.Stat(dataDir); err != nil || !info.IsDir() {
			return "", usagef("no --out given, and %s, the directory of the --connection "+
				"file, is not a readable directory: set --out to the directory for the admin "+
				"files", displayPath(dataDir))
		}
		out = filepath.Join(dataDir, "admin-"+name)
	}
	for _, file := range []string{"admin.pem", "admin-key.pem"} {
		path := filepath.Join(out, file)
		if _, err := os.Lstat(path); err == nil {
			return "", usagef("%s already exists: remove it to replace the credentials, "+
				"or set another --out", path)
		}
	}
	return out, nil
}

func checkAdminName(name string) error {
	if name == "" || len(name) > 64 || strings.TrimSpace(name) != name ||
		strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return usagef("invalid --name %q: use 1 to 64 printable characters without "+
			"leading or trailing spaces", name)
	}
	return nil
}

func checkRole(role string) error {
	if role == cluster.RoleClusterAdmin || role == cluster.RoleReadOnly {
		return nil
	}
	if org, ok := strings.CutPrefix(role, cluster.RoleOrgAdminPrefix); ok {
		if err := fsm.ValidateName("organization", org); err != nil {
			return usagef("invalid --role %q: %v", role, err)
		}
		return nil
	}
	return usagef("invalid --role %q: use cluster-admin, read-only or org-admin/ORG", role)
}

// printAdminFiles names the issued files, as JSON with --output json, else
// with the environment variables that make anchorctl use them.
func (a *app) printAdminFiles(cfg cluster.TLSConfig) error {
	abs := func(p string) string {
		if v, err := filepath.Abs(p); err == nil {
			return v
		}
		return p
	}
	cfg = cluster.TLSConfig{
		CertFile: abs(cfg.CertFile), KeyFile: abs(cfg.KeyFile), CAFile: abs(cfg.CAFile),
	}
	if a.output == "json" {
		data, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		_, err = fmt.Fprintf(a.out, "%s\n", data)
		return err
	}
	_, err := fmt.Fprintf(a.out, "export ANCHOR_TLS_CERT=%s\nexport ANCHOR_TLS_KEY=%s\n"+
		"export ANCHOR_TLS_CA=%s\n", cfg.CertFile, cfg.KeyFile, cfg.CAFile)
	return err
}
