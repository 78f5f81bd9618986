package main

import (
	"fmt"

	"github.com/spf13/cobra"

	anchorv1 "anchor/api/anchorv1"
)

func newClusterCommand(a *app) *cobra.Command {
	return group("cluster", "Show and change the cluster's membership, leadership and state",
		a.clusterStatusCommand(), a.clusterJoinCommand(), a.clusterRemoveCommand(),
		a.clusterTransferCommand(),
		group("snapshot", "Save and restore the replicated state",
			a.snapshotSaveCommand(), a.snapshotRestoreCommand()),
	)
}

func (a *app) clusterStatusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show every node: role, addresses, applied index, gossip health and CA keys held",
		Args:  cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			st, err := unary(a, cmd, a.api.cluster.Status, &anchorv1.StatusRequest{})
			if err != nil {
				return err
			}
			return a.emit(st, func(t *table) { printStatus(t, st) })
		}),
	}
}

func printStatus(t *table, st *anchorv1.StatusResponse) {
	t.field("answered by", st.NodeId)
	if st.LeaderId == "" {
		t.field("leader", "none known to "+st.NodeId+": writes fail until a majority of voters runs and reaches each other")
	} else {
		t.field("leader", st.LeaderId)
	}
	commit := fmt.Sprint(st.CommitIndex)
	if st.CommitIndex < st.AppliedIndex {
		// Raft learns the commit index from a leader after a restart.
		commit = "not known yet: " + st.NodeId + " has not received it from the leader since it started"
	}
	t.field("commit index", commit)
	t.field("applied index", fmt.Sprint(st.AppliedIndex))
	t.blank()
	t.row("NODE", "ROLE", "SUFFRAGE", "RAFT", "GRPC", "HTTP", "APPLIED", "GOSSIP", "CA KEYS")
	for _, m := range st.Members {
		role := "follower"
		stopped := m.Gossip == "dead" || m.Gossip == "left"
		switch {
		case m.Leader && stopped:
			// Raft names a leader until an election replaces it.
			role = "down (was leader)"
		case m.Leader:
			role = "leader"
		case stopped:
			// Raft keeps listing a stopped member, but gossip reports it gone.
			role = "down"
		}
		applied := "-"
		if m.AppliedIndex > 0 {
			applied = fmt.Sprint(m.AppliedIndex)
		}
		t.row(m.Id, role, m.Suffrage, m.RaftAddress, m.GrpcAddress, m.HttpAddress, applied, m.Gossip,
			fmt.Sprintf("%d: %s", len(m.CaKeys), join(m.CaKeys)))
	}
}

func (a *app) clusterJoinCommand() *cobra.Command {
	req := &anchorv1.JoinRequest{}
	cmd := &cobra.Command{
		Use:   "join NODE_ID --raft-addr HOST:PORT --grpc-addr HOST:PORT [--nonvoter]",
		Short: "Add a node to the Raft configuration",
		Long: "Add a node to the Raft configuration. A node started with join in its " +
			"configuration asks for this itself; the command is for adding one by hand.",
		Args: cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			req.Id = args[0]
			resp, err := unary(a, cmd, a.api.cluster.Join, req)
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) {
				t.field("joined", req.Id)
				t.field("log index", fmt.Sprint(resp.Index))
			})
		}),
	}

	f := cmd.Flags()
	f.StringVar(&req.RaftAddress, "raft-addr", "", "the node's Raft address")
	f.StringVar(&req.GrpcAddress, "grpc-addr", "", "the node's gRPC address")
	f.BoolVar(&req.Nonvoter, "nonvoter", false, "add the node without a vote: it serves reads only")
	_ = cmd.MarkFlagRequired("raft-addr")
	_ = cmd.MarkFlagRequired("grpc-addr")
	return cmd
}

func (a *app) clusterRemoveCommand() *cobra.Command {
	req := &anchorv1.RemoveRequest{}
	cmd := &cobra.Command{
		Use:   "remove NODE_ID [--force]",
		Short: "Take a node out of the Raft configuration",
		Long: "Take a node out of the Raft configuration. It is refused when the voters left " +
			"that gossip reports alive would be fewer than their quorum, unless --force is given.",
		Args: cobra.ExactArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			req.Id = args[0]
			resp, err := unary(a, cmd, a.api.cluster.Remove, req)
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) {
				t.field("removed", req.Id)
				t.field("log index", fmt.Sprint(resp.Index))
			})
		}),
	}

	cmd.Flags().BoolVar(&req.Force, "force", false,
		"remove the node even when the quorum check fails")
	return cmd
}

func (a *app) clusterTransferCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leadership [NODE_ID]",
		Short: "Hand leadership to another voter, to NODE_ID when given",
		Args:  cobra.MaximumNArgs(1),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			req := &anchorv1.TransferLeadershipRequest{}
			if len(args) == 1 {
				req.TargetId = args[0]
			}
			resp, err := unary(a, cmd, a.api.cluster.TransferLeadership, req)
			if err != nil {
				return err
			}
			return a.emit(resp, func(t *table) { t.field("new leader", resp.LeaderId) })
		}),
	}
}
