package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

const rootHelp = `anchorctl administers an Anchor CA cluster through the admin API of any
of its nodes; writes are passed on to the Raft leader.

The node address and the admin certificate come from the flags below, else
from ANCHOR_ADDR, ANCHOR_TLS_CERT, ANCHOR_TLS_KEY and ANCHOR_TLS_CA, else from
the connection file that make run writes (data/cluster.json: admin_tls, and
nodes[].admin_addr, tried in order until a node accepts the connection).
--addr and ANCHOR_ADDR may also list several addresses, separated by commas,
which are tried in order the same way.
Private keys are read only from files. A new admin certificate comes from
'anchorctl admin issue-cert'.

Tables are written for people; --output json writes the API's messages for
scripts. Long operations draw a progress bar on stderr when it is a terminal.

` + exitCodesHelp

// newRootCommand builds the command tree of one run.
func newRootCommand(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "anchorctl",
		Short:         "Administer an Anchor CA cluster",
		Long:          rootHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := root.PersistentFlags()
	f.StringVar(&a.addr, "addr", "", "gRPC address host:port of any node, or several separated by "+
		"commas, tried in order (default $ANCHOR_ADDR)")
	f.StringVar(&a.connFile, "connection", "data/cluster.json", "connection file written by make run")
	f.StringVar(&a.tls.cert, "tls-cert", "", "admin certificate file, PEM (default $ANCHOR_TLS_CERT)")
	f.StringVar(&a.tls.key, "tls-key", "", "admin private key file, PEM (default $ANCHOR_TLS_KEY)")
	f.StringVar(&a.tls.ca, "tls-ca", "",
		"cluster-internal CA certificate file, PEM (default $ANCHOR_TLS_CA)")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	f.DurationVar(&a.timeout, "timeout", time.Minute, "time limit of each call to the cluster")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	root.AddCommand(
		newOrgCommand(a), newRealmCommand(a), newChainCommand(a), newSubCACommand(a),
		newServiceCommand(a), newEABCommand(a), newCertCommand(a), newCRLCommand(a),
		newAuditCommand(a), newClusterCommand(a), newAdminCommand(a),
	)
	return root
}

// group returns a command that only holds subcommands. Without one it
// prints its help, and an unknown one is a usage error.
func group(use, short string, children ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:               use,
		Short:             short,
		Args:              noSubcommandArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	c.AddCommand(children...)
	return c
}

// noSubcommandArgs rejects the arguments left to a group command, which
// are an unknown subcommand, and suggests close names.
func noSubcommandArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(": did you mean %s?", strings.Join(s, " or "))
	}
	return usagef("%s (run '%s --help' for its commands)", msg, cmd.CommandPath())
}

// initCompletionCommand adds cobra's completion command and makes a
// missing or unsupported shell a usage error. It runs after the streams
// are set, because each shell's command writes to the stdout set when it
// is created.
func initCompletionCommand(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		var shells []string
		for _, sub := range c.Commands() {
			shells = append(shells, sub.Name())
		}
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("no shell given: use anchorctl completion %s",
					strings.Join(shells, "|"))
			}
			return usagef("unsupported shell %q: anchorctl completion supports %s", args[0],
				strings.Join(shells, ", "))
		}
	}
}

// hierarchyFlags are the --org, --realm and --chain flags that name where
// an object lives.
type hierarchyFlags struct {
	org, realm, chain string
}

// add registers the flags up to depth: 1 org, 2 realm, 3 chain. required
// marks them required.
func (h *hierarchyFlags) add(cmd *cobra.Command, depth int, required bool) {
	flags := []struct {
		p    *string
		name string
		help string
	}{
		{&h.org, "org", "organization name"},
		{&h.realm, "realm", "realm name in the organization"},
		{&h.chain, "chain", "chain name in the realm"},
	}
	for _, f := range flags[:depth] {
		cmd.Flags().StringVar(f.p, f.name, "", f.help)
		if required {
			_ = cmd.MarkFlagRequired(f.name)
		}
	}
}
