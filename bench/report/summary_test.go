package report

import (
	"testing"

	"anchor/bench/result"
)

func TestRaftRows_NamesBothBareClusters(t *testing.T) {
	cs := Cases{
		{Bench: "raft", Target: "anchor", Case: "apply on leader", Conc: 1, Rate: 600,
			Latency: result.Latency{P50: 1.6}},
		{Bench: "raft", Target: "hashicorp-raft", Case: "apply on leader", Conc: 1, Rate: 1300,
			Latency: result.Latency{P50: 0.8}},
		{Bench: "raft", Target: "hashicorp-raft+bbolt", Case: "apply on leader", Conc: 1, Rate: 650,
			Latency: result.Latency{P50: 1.5}},
	}
	rows := raftRows(cs)
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want latency and throughput", len(rows))
	}
	lat := rows[0]
	want := summaryRow{
		figure:  "Raft commit latency p50, 1 writer, 3 nodes",
		anchor:  "1.60 ms",
		peers:   "hashicorp/raft 0.800 ms; hashicorp/raft with bbolt FSM 1.50 ms",
		ratios:  "2.00×; 1.07×",
		target:  "< 1.5 ms",
		verdict: "missed by 7%",
	}
	if lat != want {
		t.Errorf("latency row\n got %+v\nwant %+v", lat, want)
	}
	if got := rows[1].ratios; got != "0.46×; 0.92×" {
		t.Errorf("throughput ratios = %q", got)
	}
}

func TestRaftRows_MissingPeerIsNotApplicable(t *testing.T) {
	cs := Cases{{Bench: "raft", Target: "anchor", Case: "apply on leader", Conc: 1, Rate: 600,
		Latency: result.Latency{P50: 1.2}}}
	rows := raftRows(cs)
	if len(rows) == 0 || rows[0].verdict != "met" {
		t.Fatalf("rows = %+v, want a met latency row", rows)
	}
	if rows[0].ratios != "n/a; n/a" {
		t.Errorf("ratios without peers = %q, want n/a for both", rows[0].ratios)
	}
	want := "hashicorp/raft not measured; hashicorp/raft with bbolt FSM not measured"
	if rows[0].peers != want {
		t.Errorf("peers = %q, want %q", rows[0].peers, want)
	}
	if len(rows) < 2 || rows[1].peers != want {
		t.Errorf("throughput row = %+v, want peers %q", rows, want)
	}
}
