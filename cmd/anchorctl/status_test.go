package main

import (
	"bytes"
	"strings"
	"testing"
	"text/tabwriter"

	anchorv1 "anchor/api/anchorv1"
)

func TestPrintStatus_RoleFromLeaderAndGossip(t *testing.T) {
	st := &anchorv1.StatusResponse{
		NodeId: "node1", LeaderId: "node1",
		Members: []*anchorv1.Member{
			{Id: "node1", Leader: true, Suffrage: "voter", Gossip: "alive"},
			{Id: "node2", Suffrage: "voter", Gossip: "alive"},
			{Id: "node3", Suffrage: "voter", Gossip: "dead"},
			{Id: "node4", Suffrage: "nonvoter", Gossip: "left"},
		},
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	printStatus(&table{w: tw}, st)
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"node1": "leader", "node2": "follower", "node3": "down", "node4": "down"}
	for _, line := range strings.Split(buf.String(), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		if role, ok := want[fields[0]]; ok {
			if fields[1] != role {
				t.Errorf("%s shown as %s, want %s", fields[0], fields[1], role)
			}
			delete(want, fields[0])
		}
	}
	if len(want) != 0 {
		t.Errorf("members missing from the status table: %v\n%s", want, buf.String())
	}
}

func TestPrintStatus_NoLeaderAndDeadLeader(t *testing.T) {
	st := &anchorv1.StatusResponse{
		NodeId: "node2", CommitIndex: 0, AppliedIndex: 77,
		Members: []*anchorv1.Member{
			{Id: "node1", Leader: true, Suffrage: "voter", Gossip: "dead"},
			{Id: "node2", Suffrage: "voter", Gossip: "alive"},
		},
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	printStatus(&table{w: tw}, st)
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "none known to node2: writes fail until a majority of voters runs") {
		t.Errorf("status without a leader does not say so:\n%s", out)
	}
	if !strings.Contains(out, "not known yet: node2 has not received it from the leader") {
		t.Errorf("a commit index below the applied index is shown as a number:\n%s", out)
	}
	if !strings.Contains(out, "down (was leader)") {
		t.Errorf("a leader that gossip reports dead is not shown as down:\n%s", out)
	}
}
