package main

import (
	"fmt"

	"github.com/spf13/cobra"

	anchorv1 "anchor/api/anchorv1"
)

func newAuditCommand(a *app) *cobra.Command {
	return group("audit", "Read the audit trail of committed commands", a.auditListCommand())
}

func (a *app) auditListCommand() *cobra.Command {
	req := &anchorv1.ListAuditEventsRequest{}
	cmd := &cobra.Command{
		Use:   "list [--after INDEX] [--actor ACTOR] [--limit N]",
		Short: "List audit events in log order: who committed what, and the outcome",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(a, cmd, a.api.audit.ListAuditEvents, req)
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) {
				t.row("INDEX", "TIME", "ACTOR", "COMMAND", "TARGET", "OUTCOME", "ERROR")
				for _, e := range resp.Events {
					t.row(fmt.Sprint(e.Index), e.Time, e.Actor, e.Type, e.Target, e.Outcome, e.Error)
				}
				limit := req.Limit
				if limit == 0 {
					limit = 100
				}
				if len(resp.Events) == int(limit) {
					t.blank()
					t.row(fmt.Sprintf("more: --after %d", resp.NextAfterIndex))
				}
			})
		}),
	}

	f := cmd.Flags()
	f.Uint64Var(&req.AfterIndex, "after", 0, "list events after this log index")
	f.StringVar(&req.Actor, "actor", "", "keep the events of one actor, such as admin:alice")
	f.Int32Var(&req.Limit, "limit", 0, "events to list (default 100, at most 1000)")
	return cmd
}
