package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"anchor/bench/acmeload"
	"anchor/bench/ocspload"
	"anchor/bench/result"
	"anchor/internal/localcluster"
)

// failoverLoad is what runs against the cluster while the leader dies.
type failoverLoad struct {
	accounts []*acmeload.Account
	requests []*ocspload.Request
}

func runFailover(ctx context.Context, args []string) error {
	var c common
	fs := flag.NewFlagSet("failover", flag.ExitOnError)
	c.register(fs)
	accounts := fs.Int("accounts", 16, "concurrent ACME accounts during the kill")
	before := fs.Duration("before", 3*time.Second, "load before the kill")
	after := fs.Duration("after", 7*time.Second, "load after the kill")
	_ = fs.Parse(args)
	if err := c.check(); err != nil {
		return err
	}
	dir, err := workDir(&c, "failover")
	if err != nil {
		return err
	}
	a, err := startAnchor(ctx, &c, dir, 3)
	if err != nil {
		return err
	}
	defer a.stopAll(&c)
	load, err := prepareFailover(ctx, &c, a, *accounts)
	if err != nil {
		return err
	}
	for run := 1; run <= c.runs; run++ {
		if err := killLeaderOnce(ctx, &c, a, load, run, *before, *after); err != nil {
			return err
		}
	}
	return nil
}

// prepareFailover creates the accounts and issues the certificates that
// the OCSP load asks about.
func prepareFailover(ctx context.Context, c *common, a *anchorCluster,
	n int) (*failoverLoad, error) {
	keys, err := a.createEABKeys(ctx, n)
	if err != nil {
		return nil, err
	}
	client, err := httpsClient(a.Info.ACMECACert, n)
	if err != nil {
		return nil, err
	}
	load := &failoverLoad{}
	for _, k := range keys {
		acct, err := acmeload.NewAccount(ctx, client, a.directories(), k)
		if err != nil {
			return nil, err
		}
		load.accounts = append(load.accounts, acct)
	}
	var mu sync.Mutex
	res := acmeload.Run(ctx, acmeload.Options{
		Accounts: load.accounts, Name: accountName, Duration: 2 * time.Second,
		OnIssued: func(is *acmeload.Issuance) {
			r, err := ocspload.NewRequest(is.Leaf, is.Issuer, false)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			load.requests = append(load.requests, r)
		},
	})
	if len(load.requests) == 0 {
		return nil, fmt.Errorf("no certificate issued before the failover runs: %v", res.FirstError)
	}
	return load, nil
}

// killLeaderOnce runs ACME and OCSP load, kills the leader with SIGKILL
// after before, keeps the load for after, records the outage, and restarts
// the node.
func killLeaderOnce(ctx context.Context, c *common, a *anchorCluster, load *failoverLoad, run int,
	before, after time.Duration) error {
	leader, err := a.leader(ctx, 0)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var issued []*acmeload.Issuance
	acmeDone := make(chan *acmeload.Result, 1)
	go func() {
		acmeDone <- acmeload.Run(ctx, acmeload.Options{
			Accounts: load.accounts, Name: accountName, Warmup: before, Duration: after,
			OnIssued: func(is *acmeload.Issuance) {
				mu.Lock()
				defer mu.Unlock()
				issued = append(issued, is)
			},
		})
	}()
	ocspDone := make(chan []*ocspload.Result, 1)
	go func() { ocspDone <- ocspOnFollowers(ctx, a, leader, load.requests, before, after) }()

	time.Sleep(before)
	killedAt := time.Now()
	if err := a.StopNode(leader, true); err != nil {
		return err
	}
	c.logger.Info("killed leader", "node", a.Layout.Nodes[leader].ID, "run", run)
	acmeRes := <-acmeDone
	ocspRes := <-ocspDone

	rec := failoverRecord(run, len(load.accounts), killedAt, issued, acmeRes, ocspRes)
	if err := c.results.Write(rec); err != nil {
		return err
	}
	return restartNode(ctx, a, leader)
}

// ocspOnFollowers sends OCSP GET requests over four connections to each
// node but the leader, counting from half of before until the end of the
// run.
func ocspOnFollowers(ctx context.Context, a *anchorCluster, leader int, reqs []*ocspload.Request,
	before, after time.Duration) []*ocspload.Result {
	var wg sync.WaitGroup
	results := make([]*ocspload.Result, len(a.Info.Nodes))
	for i, n := range a.Info.Nodes {
		if i == leader {
			continue
		}
		u, err := url.Parse(n.OCSPURL)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = ocspload.Run(ctx, ocspload.Options{
				Addr: u.Host, Prefix: u.Path, Method: ocspload.GET, Requests: reqs,
				Conns: 4, Warmup: before / 2, Duration: after + before/2,
				CheckEvery: 1,
			})
		}()
	}
	wg.Wait()
	return slices.DeleteFunc(results, func(r *ocspload.Result) bool { return r == nil })
}

// failoverRecord reduces one kill to a record: Latency.P50 is the time from
// the kill to the first successful finalize sent after it, Extra holds the
// longest gap between finalizes and the failed OCSP requests.
func failoverRecord(run, accounts int, killedAt time.Time, issued []*acmeload.Issuance,
	acmeRes *acmeload.Result, ocspRes []*ocspload.Result) *result.Record {
	first := time.Duration(-1)
	var done []time.Time
	for _, is := range issued {
		done = append(done, is.FinalizeDone)
		if is.FinalizeSent.After(killedAt) {
			if d := is.FinalizeDone.Sub(killedAt); first < 0 || d < first {
				first = d
			}
		}
	}
	slices.SortFunc(done, func(x, y time.Time) int { return x.Compare(y) })
	var gap time.Duration
	for i := 1; i < len(done); i++ {
		if done[i].After(killedAt) && done[i-1].Before(killedAt.Add(5*time.Second)) {
			gap = max(gap, done[i].Sub(done[i-1]))
		}
	}
	ocspOK, ocspFailed := 0, 0
	for _, r := range ocspRes {
		ocspOK += r.Ops
		ocspFailed += r.Errors
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return &result.Record{
		Bench: "failover", Target: "anchor-3", Case: "kill leader", Conc: accounts,
		Run: run, Ops: acmeRes.Ops, Errors: acmeRes.Errors, Seconds: acmeRes.Window.Seconds(),
		Rate:    float64(acmeRes.Ops) / acmeRes.Window.Seconds(),
		Latency: result.Latency{P50: ms(first), Max: ms(gap)},
		Extra: map[string]float64{
			"first_finalize_ms": ms(first), "max_finalize_gap_ms": ms(gap),
			"ocsp_ok": float64(ocspOK), "ocsp_failed": float64(ocspFailed),
			"acme_failed": float64(acmeRes.Errors),
		},
	}
}

// restartNode starts node i again and waits until it names a leader and its
// /readyz says it has applied the cluster's commit index. Without the
// second wait the next run could kill the leader while the restarted node
// still catches up, and its OCSP answers tryLater until a new leader
// replicates to it.
func restartNode(ctx context.Context, a *anchorCluster, i int) error {
	if err := a.StartNode(i); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return localcluster.WaitFor(ctx, func() error {
		st, err := localcluster.Status(ctx, a.Layout.Nodes[i].GRPCAddr, a.Layout.AdminTLS)
		if err != nil {
			return err
		}
		if st.LeaderId == "" {
			return fmt.Errorf("node %s names no leader", st.NodeId)
		}
		return a.NodeReady(ctx, i)
	})
}
