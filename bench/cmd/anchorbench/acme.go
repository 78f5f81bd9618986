package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"anchor/bench/acmeload"
	"anchor/bench/peers"
	"anchor/bench/result"
)

// acmeTarget is a server under ACME load: its directories, an HTTP client
// that trusts it, and the EAB keys its accounts need (none for Pebble).
type acmeTarget struct {
	name        string
	directories []string
	client      *http.Client
	eab         []*acmeload.EAB
	stop        func()
	// cluster is the anchor cluster, nil for Pebble.
	cluster *anchorCluster
	// restart, set for Pebble, starts a new server before each run.
	restart func(ctx context.Context) error
}

func runACME(ctx context.Context, args []string) error {
	var c common
	fs := flag.NewFlagSet("acme", flag.ExitOnError)
	c.register(fs)
	pebbleBin := fs.String("pebble", "", "Pebble binary; empty skips Pebble")
	concList := fs.String("conc", "16,64", "comma-separated numbers of concurrent accounts")
	targets := fs.String("targets", "anchor-1,anchor-3,pebble", "comma-separated targets")
	full := fs.Duration("duration", 10*time.Second, "measured time of one run")
	_ = fs.Parse(args)
	if err := c.check(); err != nil {
		return err
	}

	concs, err := parseInts(*concList)
	if err != nil {
		return err
	}
	maxConc := slices.Max(concs)
	for _, name := range strings.Split(*targets, ",") {
		if name == "pebble" && *pebbleBin == "" {
			continue
		}
		t, err := startACMETarget(ctx, &c, name, *pebbleBin, maxConc)
		if err != nil {
			return err
		}
		err = measureACME(ctx, &c, t, concs, *full)
		t.stop()
		if err != nil {
			return err
		}
	}
	return nil
}

func startACMETarget(ctx context.Context, c *common, name, pebbleBin string,
	conns int) (*acmeTarget, error) {
	dir, err := workDir(c, "acme-"+name)
	if err != nil {
		return nil, err
	}
	if name == "pebble" {
		t := &acmeTarget{name: name, stop: func() {}}
		t.restart = func(ctx context.Context) error {
			t.stop()
			p, err := peers.StartPebble(ctx, pebbleBin, dir)
			if err != nil {
				return err
			}
			t.stop = p.Stop
			t.directories = []string{p.Directory}
			t.client, err = httpsClient(p.CACert, conns)
			return err
		}
		return t, t.restart(ctx)
	}
	nodes, err := strconv.Atoi(strings.TrimPrefix(name, "anchor-"))
	if err != nil {
		return nil, fmt.Errorf("unknown ACME target %q: want anchor-N or pebble", name)
	}
	a, err := startAnchor(ctx, c, dir, nodes)
	if err != nil {
		return nil, err
	}
	t := &acmeTarget{name: name, directories: a.directories(), stop: func() { a.stopAll(c) },
		cluster: a}
	if t.client, err = httpsClient(a.Info.ACMECACert, conns); err == nil {
		t.eab, err = a.createEABKeys(ctx, conns)
	}
	if err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

// accounts creates n accounts on t, bound to t's EAB keys if it has any.
func (t *acmeTarget) accounts(ctx context.Context, n int) ([]*acmeload.Account, error) {
	out := make([]*acmeload.Account, 0, n)
	for i := range n {
		var eab *acmeload.EAB
		if t.eab != nil {
			eab = t.eab[i]
		}
		a, err := acmeload.NewAccount(ctx, t.client, t.directories, eab)
		if err != nil {
			return nil, fmt.Errorf("%s: account %d: %w", t.name, i, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func measureACME(ctx context.Context, c *common, t *acmeTarget, concs []int,
	full time.Duration) error {
	accounts, err := t.accounts(ctx, slices.Max(concs))
	if err != nil {
		return err
	}
	for _, conc := range concs {
		if err := measureACMECase(ctx, c, t, "issue", accounts[:conc], nil, full); err != nil {
			return err
		}
	}
	if t.cluster == nil || len(t.directories) < 2 {
		return nil
	}
	// Where the time of a multi-node flow goes: the same load with every
	// account on the leader, then on the followers only.
	leader, err := t.cluster.leader(ctx, 0)
	if err != nil {
		return err
	}
	n := len(t.directories)
	onLeader := func(int) int { return leader }
	onFollowers := func(i int) int { return (leader + 1 + i%(n-1)) % n }
	conc := slices.Min(concs)
	if err := measureACMECase(ctx, c, t, "issue via leader", accounts[:conc], onLeader, full); err != nil {
		return err
	}
	return measureACMECase(ctx, c, t, "issue via followers", accounts[:conc], onFollowers, full)
}

// stallLimit is how long a Pebble run may pass without a completed flow
// before it counts as stalled. Pebble v2.10.3 can deadlock under concurrent
// load (see fresh), so a stalled run ends early, is recorded as such and is
// repeated. A case gets at most maxAttemptsPerRun times the number of runs.
// Anchor's runs are never repeated: a stall there shows in max_gap_ms.
const (
	stallLimit        = 2 * time.Second
	maxAttemptsPerRun = 2
)

// measureACMECase runs one case until c.runs runs completed without a
// stall, or the attempts ran out, and records each run.
func measureACMECase(ctx context.Context, c *common, t *acmeTarget, name string,
	accounts []*acmeload.Account, start func(int) int, full time.Duration) error {
	warmup, duration := c.window(full)
	run := 0
	var stallAbort time.Duration
	if t.restart != nil {
		stallAbort = stallLimit
	}
	for attempt := 1; run < c.runs && attempt <= maxAttemptsPerRun*c.runs; attempt++ {
		if t.restart != nil {
			if err := t.fresh(ctx, &accounts); err != nil {
				return err
			}
		}
		res := acmeload.Run(ctx, acmeload.Options{
			Accounts: accounts, StartDirectory: start, Name: accountName,
			Warmup: warmup, Duration: duration, Logger: c.logger, StallAbort: stallAbort,
		})
		rec := &result.Record{
			Bench: "acme", Target: t.name, Case: name, Conc: len(accounts),
			Ops: res.Ops, Errors: res.Errors, Seconds: res.Window.Seconds(),
			Rate: float64(res.Ops) / res.Window.Seconds(), Latency: result.Summarize(res.Latencies),
			Extra: map[string]float64{"max_gap_ms": float64(res.MaxGap.Milliseconds())},
		}
		if stallAbort > 0 && res.MaxGap > stallAbort {
			c.logger.Warn("acme run stalled", "target", t.name, "case", name,
				"accounts", len(accounts), "gap", res.MaxGap, "first_error", res.FirstError)
			rec.Case, rec.Run = name+" (stalled)", attempt
			if err := c.results.Write(rec); err != nil {
				return err
			}
			continue
		}
		run++
		rec.Run = run
		if err := c.results.Write(rec); err != nil {
			return err
		}
	}
	if run < c.runs {
		c.logger.Warn("acme case stalled too often", "target", t.name, "case", name,
			"accounts", len(accounts), "completed_runs", run)
	}
	return nil
}

// fresh restarts Pebble and replaces accounts with as many new ones, each
// primed with one issuance on its own.
//
// Pebble v2.10.3's in-memory store scans every certificate on some steps, so
// each run starts with an empty store. Pebble also takes its store lock and
// the locks of authorizations in both orders. FindValidAuthorization holds
// the store's read lock and waits for an authorization, while the
// authorization handler and challenge creation hold an authorization and
// wait for the store. Once a writer such as AddCertificate queues between
// them, every request waits. Priming keeps the first orders, which fetch
// authorizations and create challenges, out of the concurrent run, and the
// stall check in measureACMECase catches the deadlocks that remain.
func (t *acmeTarget) fresh(ctx context.Context, accounts *[]*acmeload.Account) error {
	if err := t.restart(ctx); err != nil {
		return err
	}
	next, err := t.accounts(ctx, len(*accounts))
	if err != nil {
		return err
	}
	*accounts = next
	return acmeload.Prime(ctx, next, accountName)
}

// accountName is the one name that account i orders, again and again.
func accountName(i int) string { return fmt.Sprintf("w%d.%s", i, benchDomain) }

func parseInts(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("invalid number %q in %q", f, list)
		}
		out = append(out, n)
	}
	return out, nil
}
