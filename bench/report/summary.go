package report

import (
	"fmt"
	"strings"
)

// summaryRow is one line of the summary table.
type summaryRow struct {
	figure, anchor, peers, ratios, target, verdict string
}

// Summary renders the top of the page: how and where the figures were
// measured, and the table of headline figures with ratios and targets.
func Summary(cs Cases, meta Meta) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured by `make bench`, started %s, on %s.\n", meta.Date, meta.Machine)
	if meta.Quick {
		b.WriteString("\n**Quick run (BENCH_QUICK=1): one short run per case; the figures are " +
			"for checking the harness, not for comparison.**\n")
	}
	fmt.Fprintf(&b, "\nEvery figure is the median of %d runs. Load and peers share the same two "+
		"cores, so a ratio compares servers under the same client cost, not peak capacity. "+
		"\"Anchor ÷ peer\" is Anchor's figure divided by the peer's: above 1 is better for "+
		"throughput, below 1 for latency.\n\n", runsOf(cs))

	var rows [][]string
	for _, r := range summaryRows(cs) {
		rows = append(rows, []string{r.figure, r.anchor, r.peers, r.ratios, r.target, r.verdict})
	}
	b.WriteString(table([]string{"figure", "Anchor", "peer", "Anchor ÷ peer", "target", "verdict"}, rows))

	b.WriteString("\nCommands:\n\n```sh\nmake bench                 # full run, three runs of every case\n" +
		"BENCH_QUICK=1 make bench   # smoke test: one short run of every case\n```\n")
	if len(meta.Commands) > 0 {
		b.WriteString("\nWhat `make bench` ran (bench/run.sh):\n\n```sh\n" +
			strings.Join(meta.Commands, "\n") + "\n```\n")
	}
	if len(meta.Versions) > 0 {
		b.WriteString("\nPeers and tools: " + strings.Join(meta.Versions, "; ") + ".\n")
	}
	if len(meta.Loads) > 0 {
		b.WriteString("\n1-minute load average when each phase started: " +
			strings.Join(meta.Loads, "; ") + ". The benchmark keeps both cores busy itself, " +
			"so a phase also carries the load of the one before it.\n")
	}
	return b.String()
}

func runsOf(cs Cases) int {
	n := 0
	for _, c := range cs {
		n = max(n, c.Runs)
	}
	return n
}

func summaryRows(cs Cases) []summaryRow {
	var rows []summaryRow
	rows = append(rows, acmeRows(cs)...)
	rows = append(rows, ocspRows(cs)...)
	rows = append(rows, capathRows(cs)...)
	rows = append(rows, raftRows(cs)...)
	rows = append(rows, failoverRows(cs)...)
	rows = append(rows, crlRows(cs)...)
	rows = append(rows, memoryRows(cs)...)
	rows = append(rows, summaryRow{
		figure: "revocation visible on every node, p99", anchor: "see Revocation propagation",
		peers: "—", ratios: "—", target: "≤ 1 s", verdict: "measured in that section",
	})
	return rows
}

func acmeRows(cs Cases) []summaryRow {
	var rows []summaryRow
	for _, nodes := range []string{"anchor-3", "anchor-1"} {
		best := cs.Best("acme", nodes, "issue")
		if best == nil {
			continue
		}
		peer := cs.Rate("acme", "pebble", "issue", best.Conc)
		peerText := "Pebble " + count(peer)
		if peer == 0 {
			peerText = "Pebble: stalled in every run"
		}
		r := summaryRow{
			figure: fmt.Sprintf("ACME certificates/s, %s, %d accounts", nodesLabel(nodes), best.Conc),
			anchor: count(best.Rate), peers: peerText,
			ratios: ratio(best.Rate, peer), target: "—", verdict: "—",
		}
		if nodes == "anchor-3" {
			r.target, r.verdict = "≥ 400", verdict(best.Rate, 400, true)
		}
		rows = append(rows, r)
	}
	if c := cs.Get("acme", "anchor-3", "issue", 16); c != nil {
		p := cs.Get("acme", "pebble", "issue", 16)
		peer := 0.0
		if p != nil {
			peer = p.Latency.P50
		}
		rows = append(rows, summaryRow{figure: "ACME flow latency p50, 3 nodes, 16 accounts",
			anchor: millis(c.Latency.P50), peers: "Pebble " + millis(peer),
			ratios: ratio(c.Latency.P50, peer), target: "—", verdict: "—"})
	}
	return rows
}

func ocspRows(cs Cases) []summaryRow {
	var rows []summaryRow
	for _, name := range []string{"GET pre-signed", "POST pre-signed", "GET nonce", "POST nonce"} {
		best := cs.Best("ocsp", "anchor", name)
		if best == nil {
			continue
		}
		var peers, ratios []string
		for _, p := range []string{"openssl", "cfssl"} {
			if pc := cs.Best("ocsp", p, name); pc != nil {
				peers = append(peers, fmt.Sprintf("%s %s", p, count(pc.Rate)))
				ratios = append(ratios, ratio(best.Rate, pc.Rate))
			}
		}
		r := summaryRow{
			figure: fmt.Sprintf("OCSP %s, responses/s per node (best at %d connections)", name, best.Conc),
			anchor: count(best.Rate), peers: strings.Join(peers, "; "),
			ratios: strings.Join(ratios, "; "), target: "—", verdict: "—",
		}
		if !strings.Contains(name, "nonce") {
			r.target = "≥ 35,000 and ≥ 3× openssl"
			r.verdict = "35,000: " + verdict(best.Rate, 35000, true)
			if o := cs.Best("ocsp", "openssl", name); o != nil {
				r.verdict += "; 3× openssl: " + verdict(best.Rate/o.Rate, 3, true)
			}
		}
		rows = append(rows, r)
	}
	if c := cs.Get("ocsp", "anchor", "GET pre-signed", 64); c != nil {
		var peers, ratios []string
		for _, p := range []string{"openssl", "cfssl"} {
			if pc := cs.Get("ocsp", p, "GET pre-signed", 64); pc != nil {
				peers = append(peers, p+" "+millis(pc.Latency.P99))
				ratios = append(ratios, ratio(c.Latency.P99, pc.Latency.P99))
			}
		}
		rows = append(rows, summaryRow{figure: "OCSP GET pre-signed, p99 latency at 64 connections",
			anchor: millis(c.Latency.P99), peers: strings.Join(peers, "; "),
			ratios: strings.Join(ratios, "; "), target: "—", verdict: "—"})
	}
	return rows
}

func capathRows(cs Cases) []summaryRow {
	raw := cs.Best("capath", "hsm-raw", "Sign P-256")
	if raw == nil {
		return nil
	}
	var rows []summaryRow
	for _, t := range []string{"anchor-1", "anchor-3"} {
		c := cs.Best("capath", t, "Issuer.Issue on leader")
		if c == nil {
			continue
		}
		rows = append(rows, summaryRow{
			figure: fmt.Sprintf("CA signing path, Issuer.Issue/s on the leader, %s, %d goroutines",
				nodesLabel(t), c.Conc),
			anchor: count(c.Rate), peers: "raw SoftHSM2 P-256 signatures " + count(raw.Rate),
			ratios: ratio(c.Rate, raw.Rate), target: "—", verdict: "—",
		})
	}
	return rows
}

func raftRows(cs Cases) []summaryRow {
	var rows []summaryRow
	if a := cs.Get("raft", "anchor", "apply on leader", 1); a != nil {
		var peers, ratios []string
		for _, p := range raftPeers {
			b := cs.Get("raft", p.target, "apply on leader", 1)
			if b == nil {
				peers = append(peers, p.name+" not measured")
				ratios = append(ratios, "n/a")
				continue
			}
			peers = append(peers, p.name+" "+millis(b.Latency.P50))
			ratios = append(ratios, ratio(a.Latency.P50, b.Latency.P50))
		}
		rows = append(rows, summaryRow{figure: "Raft commit latency p50, 1 writer, 3 nodes",
			anchor: millis(a.Latency.P50), peers: strings.Join(peers, "; "),
			ratios: strings.Join(ratios, "; "), target: "< 1.5 ms",
			verdict: verdict(a.Latency.P50, 1.5, false)})
	}
	if a := cs.Best("raft", "anchor", "apply on leader"); a != nil {
		var peers, ratios []string
		for _, p := range raftPeers {
			peer := cs.Rate("raft", p.target, "apply on leader", a.Conc)
			if peer == 0 {
				peers = append(peers, p.name+" not measured")
				ratios = append(ratios, "n/a")
				continue
			}
			peers = append(peers, p.name+" "+count(peer))
			ratios = append(ratios, ratio(a.Rate, peer))
		}
		rows = append(rows, summaryRow{figure: fmt.Sprintf("Raft commits/s, %d writers, 3 nodes", a.Conc),
			anchor: count(a.Rate), peers: strings.Join(peers, "; "),
			ratios: strings.Join(ratios, "; "), target: "—", verdict: "—"})
	}
	return rows
}

// raftPeers are the bare hashicorp/raft clusters of TestBenchRaft: with a
// state machine that only counts, and with one that writes to bbolt.
var raftPeers = []struct{ target, name string }{
	{"hashicorp-raft", "hashicorp/raft"},
	{"hashicorp-raft+bbolt", "hashicorp/raft with bbolt FSM"},
}

func failoverRows(cs Cases) []summaryRow {
	c := cs.Get("failover", "anchor-3", "kill leader", cs.concOf("failover"))
	if c == nil {
		return nil
	}
	first := c.Extra["first_finalize_ms"]
	failed := c.Extra["ocsp_failed"]
	verdictFailed := "met"
	if failed > 0 {
		verdictFailed = fmt.Sprintf("missed: %.0f failed", failed)
	}
	return []summaryRow{
		{figure: "failover: leader killed → next successful finalize", anchor: millis(first),
			peers: "—", ratios: "—", target: "≤ 2 s", verdict: verdict(first, 2000, false)},
		{figure: "failover: failed OCSP requests on the surviving nodes",
			anchor: fmt.Sprintf("%.0f of %s", failed, count(failed+c.Extra["ocsp_ok"])),
			peers:  "—", ratios: "—", target: "0", verdict: verdictFailed},
	}
}

func crlRows(cs Cases) []summaryRow {
	c := cs.Get("crl", "anchor", "sign/1000000", 1)
	if c == nil {
		return nil
	}
	return []summaryRow{{figure: "CRL of 1,000,000 revocations: sort, encode, sign (see CRL generation)",
		anchor: millis(c.Latency.P50) + ", " + bytesSize(c.Extra["bytes"]), peers: "—", ratios: "—",
		target: "≤ 3 s", verdict: verdict(c.Latency.P50, 3000, false)}}
}

func memoryRows(cs Cases) []summaryRow {
	c := cs.Get("memory", "anchor-1", "credentials", cs.concOf("memory"))
	if c == nil || c.Extra["credentials"] == 0 {
		return nil
	}
	n := c.Extra["credentials"]
	perMillion := 1e6 / n
	// The requests bucket keeps the last five minutes of command results,
	// whatever the number of certificates, so it is not extrapolated.
	stored := c.Extra["state_db_used_bytes"] - c.Extra["bucket_requests"]
	return []summaryRow{{
		figure: fmt.Sprintf("per million stored certificates (extrapolated from %s)", count(n)),
		anchor: fmt.Sprintf("state.db %s without recent request results, RSS +%s", bytesSize(stored*perMillion),
			bytesSize((c.Extra["rss_bytes"]-c.Extra["rss_base_bytes"])*perMillion)),
		peers: "—", ratios: "—", target: "—", verdict: "—",
	}}
}

// nodesLabel turns a target such as "anchor-3" into "3 nodes".
func nodesLabel(target string) string {
	n := strings.TrimPrefix(target, "anchor-")
	if n == "1" {
		return "1 node"
	}
	return n + " nodes"
}

// concOf returns the first concurrency recorded for bench, or 0.
func (cs Cases) concOf(bench string) int {
	if concs := cs.Concs(bench); len(concs) > 0 {
		return concs[0]
	}
	return 0
}
