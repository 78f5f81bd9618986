//go:build e2e

package drills

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestDrill_LeaderKilledDuringIssuance runs 50 ACME issuances with lego,
// three at a time spread over the three nodes, and kills the Raft leader
// with docker kill after the 15th. A client whose node fails moves to the
// next node. Every issuance must complete, no serial may repeat, and once
// the killed node is started again every node must respond good over OCSP
// for every certificate.
func TestDrill_LeaderKilledDuringIssuance(t *testing.T) {
	const (
		total     = 50
		workers   = 3
		killAfter = 15
	)
	c := threeNodeCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	acct, err := c.registerAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldLeader, err := c.leader(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	leaderIdx := c.index(oldLeader)
	all := []int{0, 1, 2}

	// 1. Issue in the background; kill the leader after killAfter issuances.
	results := make([]*issued, total)
	errs := make([]error, total)
	completed := make(chan struct{}, total)
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				domain := fmt.Sprintf("leader-kill-%02d.drill.test", n)
				results[n], errs[n] = c.obtainWithFailover(ctx, acct, all, n, domain, 6)
				completed <- struct{}{}
			}
		}()
	}
	go func() {
		for n := 0; n < total; n++ {
			jobs <- n
		}
		close(jobs)
	}()
	for n := 0; n < killAfter; n++ {
		<-completed
	}
	killStart := time.Now()
	if err := c.kill(ctx, leaderIdx); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	logf("killed leader %s after %d issuances, %s into the run (docker kill took %s)",
		oldLeader, killAfter, ms(killStart.Sub(start)), ms(killedAt.Sub(killStart)))
	survivors := without(all, leaderIdx)
	newLeader, toLeader, err := c.waitLeader(ctx, survivors, oldLeader, killedAt)
	if err != nil {
		t.Fatalf("no new leader after killing %s: %v", oldLeader, err)
	}
	logf("new leader %s, %s after docker kill returned", newLeader, ms(toLeader))
	wg.Wait()
	runTime := time.Since(start)

	// 2. Every issuance completed, with unique serials.
	certs := checkIssuances(t, results, errs)
	logf("issuances: %d of %d completed in %s, %d failed", len(certs), total, ms(runTime),
		total-len(certs))

	// 3. The killed node comes back and catches up, and every node responds
	// good for every certificate.
	restartedAt := time.Now()
	if err := c.start(ctx, leaderIdx); err != nil {
		t.Fatal(err)
	}
	caughtUp, err := c.waitCaughtUp(ctx, leaderIdx)
	if err != nil {
		t.Fatalf("%s did not catch up after restart: %v", oldLeader, err)
	}
	logf("%s restarted and caught up in %s", oldLeader, ms(caughtUp.Sub(restartedAt)))
	checks, bad := c.ocspAllGood(ctx, all, certs)
	logf("OCSP: %d checks (%d certificates x %d nodes), %d not good", checks, len(certs),
		len(all), bad)
	if bad > 0 {
		t.Errorf("%d OCSP checks were not good", bad)
	}
}

// checkIssuances reports failed issuances and repeated serials, logs the
// failover counts, and returns the certificates obtained.
func checkIssuances(t *testing.T, results []*issued, errs []error) []*issued {
	t.Helper()
	var certs []*issued
	var lat latencies
	serials := map[string]string{}
	failedAttempts, retried := 0, 0
	for n, r := range results {
		if errs[n] != nil {
			t.Errorf("issuance %d failed: %v", n, errs[n])
			continue
		}
		serial := r.leaf.SerialNumber.Text(16)
		if other, dup := serials[serial]; dup {
			t.Errorf("serial %s issued twice: %s and %s", serial, other, r.leaf.DNSNames)
		}
		serials[serial] = fmt.Sprint(r.leaf.DNSNames)
		if r.attempts > 1 {
			retried++
			failedAttempts += r.attempts - 1
			logf("  %s: %d attempts, failed: %v", r.leaf.DNSNames[0], r.attempts, r.errs)
		}
		lat = append(lat, r.elapsed)
		certs = append(certs, r)
	}
	p50, p95, max := lat.summary()
	logf("issuance latency p50 %s, p95 %s, max %s; %d issuances needed another node "+
		"(%d failed attempts); %d distinct serials", ms(p50), ms(p95), ms(max), retried,
		failedAttempts, len(serials))
	return certs
}

// ocspAllGood queries every node in among for every certificate, retrying a
// check that is not good for up to 30 seconds, and returns the number of
// checks and how many never returned good.
func (c *drillCluster) ocspAllGood(ctx context.Context, among []int, certs []*issued) (
	checks, bad int) {
	for _, i := range among {
		for _, r := range certs {
			checks++
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			var last string
			err := poll(cctx, 200*time.Millisecond, func() error {
				status, err := ocspStatus(cctx, c.nodes[i].httpURL, r.leaf, r.issuer)
				if err != nil {
					last = err.Error()
					return err
				}
				last = status
				if status != "good" {
					return fmt.Errorf("status %s", status)
				}
				return nil
			})
			cancel()
			if err != nil {
				bad++
				logf("  %s: %s is %s", c.nodes[i].id, r.leaf.DNSNames[0], last)
			}
		}
	}
	return checks, bad
}

func without(list []int, drop ...int) []int {
	var out []int
	for _, v := range list {
		keep := true
		for _, d := range drop {
			keep = keep && v != d
		}
		if keep {
			out = append(out, v)
		}
	}
	return out
}
