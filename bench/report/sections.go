package report

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Sections renders the generated regions below the summary. images is the
// directory of the plots relative to the page; profiles maps "ocsp" and
// "acme" to the top lines of `go tool pprof -top`.
func Sections(cs Cases, images string, profiles map[string][]string) []Region {
	return []Region{
		{Name: "acme", Heading: "ACME issuance", Body: acmeSection(cs, images, profiles["acme"])},
		{Name: "ocsp", Heading: "OCSP", Body: ocspSection(cs, images, profiles["ocsp"])},
		{Name: "capath", Heading: "CA signing path", Body: capathSection(cs)},
		{Name: "raft", Heading: "Raft commit", Body: raftSection(cs, images)},
		{Name: "failover", Heading: "Failover", Body: failoverSection(cs)},
		{Name: "memory", Heading: "Memory and disk", Body: memorySection(cs)},
	}
}

func acmeSection(cs Cases, images string, prof []string) string {
	var b strings.Builder
	b.WriteString("Full ACME flows (new order, authorization, finalize, polls, certificate download) " +
		"from concurrent accounts, each ordering one name again and again (bench/acmeload, " +
		"`anchorbench acme`). Anchor: every account has its own EAB key (created with the " +
		"admin API, CreateEABKey) that pre-authorizes `*.bench.test`, so no challenge runs; on " +
		"three nodes the accounts are spread over the nodes. Pebble: PEBBLE_VA_NOSLEEP=1, " +
		"PEBBLE_WFE_NONCEREJECT=0, PEBBLE_AUTHZREUSE=100 and PEBBLE_VA_ALWAYS_VALID=1, so " +
		"after each account's first order its authorization is reused and no validation runs " +
		"either. Both sides thus pay no validation; Pebble keeps its state in memory and " +
		"signs in software, Anchor commits every step through Raft to bbolt and signs in " +
		"SoftHSM2. Polls run every 5 ms.\n\n" +
		"Pebble v2.10.3 can deadlock under concurrent load. Its authorization handler holds an " +
		"authorization's lock while it reads the store, and order creation holds the store's " +
		"read lock while it reads authorizations, so once a writer queues between them every " +
		"request waits. The load generator therefore does not fetch the authorizations of an " +
		"order that is already ready, which RFC 8555 allows and which it does against Anchor " +
		"too. It also gives every Pebble account its first order alone before the measured " +
		"load, and counts a run in which no flow completed for 2 s as stalled (last column) " +
		"and repeats it. Each Pebble run starts a new Pebble, because its in-memory store scans " +
		"every certificate on some steps and slows down as certificates accumulate.\n\n")
	var rows [][]string
	for _, t := range []string{"anchor-1", "anchor-3", "pebble"} {
		for _, name := range []string{"issue", "issue via leader", "issue via followers"} {
			for _, conc := range cs.Concs("acme") {
				if row := acmeRow(cs, t, name, conc); row != nil {
					rows = append(rows, row)
				}
			}
		}
	}
	b.WriteString(table([]string{"server", "accounts on", "accounts", "certificates/s",
		"range over runs", "p50", "p90", "p99", "failed flows", "stalled runs"}, rows))
	fmt.Fprintf(&b, "\n![ACME flow latency](%s/acme-latency.png)\n", images)
	writeProfile(&b, "three in-process nodes under 64 accounts (TestBenchProfileACME)", prof)
	return b.String()
}

// acmeRow is one line of the ACME table, or nil when the case has no runs.
func acmeRow(cs Cases, target, name string, conc int) []string {
	c := cs.Get("acme", target, name, conc)
	stalled := 0
	if st := cs.Get("acme", target, name+" (stalled)", conc); st != nil {
		stalled = st.Runs
	}
	if c == nil && stalled == 0 {
		return nil
	}
	nodes := "all"
	if name != "issue" {
		nodes = strings.TrimPrefix(name, "issue via ")
	}
	row := []string{target, nodes, fmt.Sprint(conc)}
	if c == nil {
		return append(row, "none: every run stalled", "—", "—", "—", "—", "—", fmt.Sprint(stalled))
	}
	return append(row, count(c.Rate), count(c.RateMin)+"–"+count(c.RateMax),
		millis(c.Latency.P50), millis(c.Latency.P90), millis(c.Latency.P99),
		fmt.Sprintf("%.0f", c.Errors), fmt.Sprint(stalled))
}

func ocspSection(cs Cases, images string, prof []string) string {
	var b strings.Builder
	b.WriteString("Closed-loop load over HTTP/1.1 keep-alive connections (bench/ocspload, " +
		"`anchorbench ocsp`), one request in flight per connection, round-robin over the " +
		"same certificates issued by a one-node cluster. Anchor: the node process. openssl: " +
		"`openssl ocsp -index index.txt -CA issuer.pem -rsigner … -port … -multi 2 -nmin 60`, " +
		"signing every response in software with its own P-256 responder key. cfssl: `cfssl " +
		"ocspserve -responses …` with responses signed beforehand by `cfssl ocspsign`; it serves " +
		"stored responses and echoes no nonce, so it has no nonce rows. \"pre-signed\": " +
		"requests without a nonce, which Anchor answers from its cache of signed responses; " +
		"\"nonce\": a fresh 32-octet nonce per request, which Anchor signs in SoftHSM2. Every " +
		"64th response of a connection is parsed in full and checked (good, serial, nonce). " +
		"The peers are started before the first measurement and probed with plain HTTP " +
		"requests until one is answered, never with a bare connection: an `openssl ocsp` " +
		"worker (OpenSSL 3.0) " +
		"that accepts a connection closed before its request reads end-of-file from it in a " +
		"loop and keeps a CPU busy for as long as it runs.\n\n")
	targets := []string{"anchor", "openssl", "cfssl"}
	for _, name := range []string{"GET pre-signed", "POST pre-signed", "GET nonce", "POST nonce"} {
		header := []string{"connections"}
		for _, t := range targets {
			header = append(header, t+" responses/s", t+" p50 / p99")
		}
		var rows [][]string
		for _, conc := range cs.Concs("ocsp") {
			row := []string{fmt.Sprint(conc)}
			measured := false
			for _, t := range targets {
				c := cs.Get("ocsp", t, name, conc)
				if c == nil {
					row = append(row, "—", "—")
					continue
				}
				measured = true
				rate := count(c.Rate)
				if c.Errors > 0 {
					rate += fmt.Sprintf(" (%.0f failed)", c.Errors)
				}
				row = append(row, rate, millis(c.Latency.P50)+" / "+millis(c.Latency.P99))
			}
			if measured {
				rows = append(rows, row)
			}
		}
		if len(rows) > 0 {
			fmt.Fprintf(&b, "**%s**\n\n%s\n", name, table(header, rows))
		}
	}
	fmt.Fprintf(&b, "![OCSP throughput](%s/ocsp-throughput.png)\n\n"+
		"![OCSP latency](%s/ocsp-latency.png)\n", images, images)
	writeProfile(&b, "the responder in-process under 64 connections of GET pre-signed "+
		"(TestBenchProfileOCSP)", prof)
	return b.String()
}

func writeProfile(b *strings.Builder, what string, top []string) {
	if len(top) == 0 {
		return
	}
	fmt.Fprintf(b, "\nCPU profile of %s: the top functions by own time (`go tool pprof -top`), "+
		"then Anchor's functions by cumulative time (`-top -cum -show='^anchor/'`):\n\n```\n%s\n```\n",
		what, strings.Join(top, "\n"))
}

func capathSection(cs Cases) string {
	var b strings.Builder
	b.WriteString("`ca.Issuer.Issue` in-process (TestBenchCAPath, internal/testenv with real Raft " +
		"and SoftHSM2): CSR check, policy, signature with the SubCA key in SoftHSM2 and the " +
		"`credential.issue` commit, from 16 goroutines with CSRs made beforehand. The baseline " +
		"is raw P-256 signatures with the same key through the hsm package; the HSM signing " +
		"section has the HSM layer in detail.\n\n")
	var rows [][]string
	for _, key := range []struct{ target, name string }{
		{"hsm-raw", "Sign P-256"}, {"anchor-1", "Issuer.Issue on leader"},
		{"anchor-3", "Issuer.Issue on leader"}, {"anchor-3", "Issuer.Issue on follower"},
	} {
		for _, c := range cs.Filter("capath") {
			if c.Target == key.target && c.Case == key.name {
				rows = append(rows, []string{key.target, key.name, count(c.Rate),
					millis(c.Latency.P50), millis(c.Latency.P99)})
			}
		}
	}
	b.WriteString(table([]string{"setup", "operation", "per second", "p50", "p99"}, rows))
	return b.String()
}

func raftSection(cs Cases, images string) string {
	var b strings.Builder
	b.WriteString("Commits of the same bytes (an encoded `acme.nonce.redeem` command, about 150 " +
		"bytes) on three members in one process (TestBenchRaft). Anchor: `cluster.Node.Apply`, " +
		"mutual TLS between members, and the state machine writes the nonce to bbolt without " +
		"fsync (state.db is synced when the node stops and rebuilt after a machine crash). Bare: " +
		"hashicorp/raft v1.7.2 with raft-boltdb/v2, `raft.NewTCPTransport` without TLS, and the " +
		"same timeouts, batching and connection pool. Its FSM only counts (`hashicorp-raft`), " +
		"or it writes each batch of entries to a bbolt file in one transaction with fsync, as " +
		"Anchor's state.db does with `state_sync` (`hashicorp-raft+bbolt`). All keep their Raft " +
		"logs on the same disk, with fsync.\n\n")
	var rows [][]string
	for _, c := range cs.Filter("raft") {
		rows = append(rows, []string{c.Target, c.Case, fmt.Sprint(c.Conc), count(c.Rate),
			millis(c.Latency.P50), millis(c.Latency.P99)})
	}
	b.WriteString(table([]string{"cluster", "path", "writers", "commits/s", "p50", "p99"}, rows))
	fmt.Fprintf(&b, "\n![Raft commit latency](%s/raft-latency.png)\n", images)
	return b.String()
}

func failoverSection(cs Cases) string {
	var b strings.Builder
	b.WriteString("Three anchor-node processes (`anchorbench failover`). 16 ACME accounts issue " +
		"over all nodes and four connections per follower send OCSP GET requests; after 3 s the " +
		"leader process gets SIGKILL and the load runs 7 s more. An account whose node fails " +
		"moves to the next node. \"next finalize\" is the time from the kill to the first " +
		"successful finalize response among finalizes sent after the kill; \"longest gap\" is " +
		"the longest time between two successful finalizes around the kill. The killed node " +
		"is restarted and caught up before the next run. Medians over the runs:\n\n")
	c := cs.Get("failover", "anchor-3", "kill leader", cs.concOf("failover"))
	if c == nil {
		return b.String() + "Not measured.\n"
	}
	b.WriteString(table([]string{"next finalize", "longest gap", "failed flows",
		"OCSP failed", "OCSP answered"}, [][]string{{
		millis(c.Extra["first_finalize_ms"]), millis(c.Extra["max_finalize_gap_ms"]),
		fmt.Sprintf("%.0f", c.Extra["acme_failed"]), fmt.Sprintf("%.0f", c.Extra["ocsp_failed"]),
		count(c.Extra["ocsp_ok"]),
	}}))
	return b.String()
}

func memorySection(cs Cases) string {
	var b strings.Builder
	b.WriteString("TestBenchMemory commits N `credential.issue` commands through Raft and the " +
		"state machine of a one-node in-process cluster from 64 goroutines. It then reads the " +
		"process's resident memory (VmRSS, after a GC), stops the node and measures state.db: " +
		"the file, the part up to bbolt's highest page in use, and the bytes each top-level " +
		"bucket uses (bbolt Bucket.Stats). The leaves look like the cluster's (P-256, one DNS " +
		"name, the SubCA's URLs). The per-million figures are linear extrapolations, not " +
		"measurements.\n\n")
	c := cs.Get("memory", "anchor-1", "credentials", cs.concOf("memory"))
	if c == nil || c.Extra["credentials"] == 0 {
		return b.String() + "Not measured.\n"
	}
	n := c.Extra["credentials"]
	per := 1e6 / n
	rss := c.Extra["rss_bytes"] - c.Extra["rss_base_bytes"]
	rows := [][]string{
		{"state.db in use", bytesSize(c.Extra["state_db_used_bytes"]),
			bytesSize(c.Extra["state_db_used_bytes"] * per)},
		{"state.db file", bytesSize(c.Extra["state_db_bytes"]), "—"},
		{"raft.db file (log since the last compaction)", bytesSize(c.Extra["raft_db_bytes"]), "—"},
		{"RSS growth", bytesSize(rss), bytesSize(rss * per)},
		{"RSS total", bytesSize(c.Extra["rss_bytes"]), "—"},
		{"of which anonymous (heap, stacks)", bytesSize(c.Extra["rss_anon_bytes"]), "—"},
		{"of which mapped files (state.db, raft.db, libraries)", bytesSize(c.Extra["rss_file_bytes"]), "—"},
		{"load rate", count(c.Rate) + " credentials/s", "—"},
	}
	for _, bucket := range topBuckets(c.Extra, 5) {
		rows = append(rows, []string{"bucket `" + bucket + "`", bytesSize(c.Extra["bucket_"+bucket]),
			bytesSize(c.Extra["bucket_"+bucket] * per)})
	}
	b.WriteString(table([]string{"", fmt.Sprintf("measured, %s credentials", count(n)),
		"per million (extrapolated)"}, rows))
	return b.String()
}

// topBuckets returns the names of the n largest buckets in extra.
func topBuckets(extra map[string]float64, n int) []string {
	var names []string
	for k := range extra {
		if name, ok := strings.CutPrefix(k, "bucket_"); ok {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Compare(extra["bucket_"+b], extra["bucket_"+a])
	})
	return names[:min(n, len(names))]
}
