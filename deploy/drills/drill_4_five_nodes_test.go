//go:build e2e

package drills

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDrill_FiveNodesLoseTwoThenThree runs the five-node variant
// (docker-compose.5.yml). It kills the leader and one follower, and the
// three left must elect a leader and keep issuing. It then kills a third
// node. The two left must reject writes with a no-leader error within
// maxNoLeaderWait and still respond good over OCSP for every certificate.
// Finally the three killed nodes start again, and the cluster must issue
// again, with every node responding good for the new certificate.
func TestDrill_FiveNodesLoseTwoThenThree(t *testing.T) {
	mu.Lock()
	three, running := clusters["anchordrill3"]
	mu.Unlock()
	if running {
		stopCluster(t, three) // two cores: run one cluster at a time
	}
	c := fiveNodeCluster(t)
	t.Cleanup(func() { stopCluster(t, c) })
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	acct, err := c.registerAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all := []int{0, 1, 2, 3, 4}
	certs := issueN(ctx, t, c, acct, all, "five-start", 5)

	// 1. Lose one follower, then the leader; the time to a new leader
	// counts from the leader's kill.
	leaderID, err := c.leader(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	first := c.index(leaderID)
	second := (first + 1) % 5
	killNodes(ctx, t, c, second)
	killedAt := killNodes(ctx, t, c, first)
	left := without(all, first, second)
	newLeader, toLeader, err := c.waitLeader(ctx, left, leaderID, killedAt)
	if err != nil {
		t.Fatalf("no leader among %s: %v", ids(c, left), err)
	}
	logf("killed follower %s, then leader %s; new leader %s %s after docker kill returned",
		c.nodes[second].id, leaderID, newLeader, ms(toLeader))
	start := time.Now()
	more := issueN(ctx, t, c, acct, left, "five-minus-two", 10)
	logf("issued %d certificates on %s in %s, 0 failed", len(more), ids(c, left),
		ms(time.Since(start)))
	certs = append(certs, more...)

	// 2. Lose a third node, the new leader: no majority is left.
	third := c.index(newLeader)
	killNodes(ctx, t, c, third)
	left = without(left, third)
	logf("killed %s; %s are left without a majority", newLeader, ids(c, left))
	for _, i := range left {
		checkWriteRejected(ctx, t, c, acct, i)
	}
	checks, bad := c.ocspAllGood(ctx, left, certs)
	logf("OCSP without a majority: %d checks on %s, %d not good", checks, ids(c, left), bad)
	if bad > 0 {
		t.Errorf("%d OCSP checks without a majority were not good", bad)
	}

	// 3. Bring the three back: a leader again, a new certificate everywhere.
	restartAt := time.Now()
	for _, i := range []int{first, second, third} {
		if err := c.start(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	back, toBack, err := c.waitLeader(ctx, all, "", restartAt)
	if err != nil {
		t.Fatalf("no leader after the restart: %v", err)
	}
	last := issueN(ctx, t, c, acct, all, "five-back", 1)
	checks, bad = c.ocspAllGood(ctx, all, last)
	logf("started the three again: leader %s after %s; new certificate good on %d of %d nodes",
		back, ms(toBack), checks-bad, checks)
	if bad > 0 {
		t.Errorf("%d nodes did not respond good for the certificate issued after recovery", bad)
	}
}

func killNodes(ctx context.Context, t *testing.T, c *drillCluster, nodes ...int) time.Time {
	t.Helper()
	for _, i := range nodes {
		if err := c.kill(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	return time.Now()
}

// checkWriteRejected tries one issuance on node i and expects a no-leader
// error within maxNoLeaderWait.
func checkWriteRejected(ctx context.Context, t *testing.T, c *drillCluster, acct *acmeAccount,
	i int) {
	t.Helper()
	domain := fmt.Sprintf("five-no-majority-%s.drill.test", c.nodes[i].id)
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	_, err := c.obtain(wctx, acct, i, domain)
	cancel()
	elapsed := time.Since(start)
	if err == nil {
		t.Errorf("%s issued a certificate without a majority", c.nodes[i].id)
		return
	}
	logf("write on %s rejected after %s: %v", c.nodes[i].id, ms(elapsed), err)
	if elapsed > maxNoLeaderWait {
		t.Errorf("%s took %s to reject a write, want at most %s", c.nodes[i].id, ms(elapsed),
			maxNoLeaderWait)
	}
	if !strings.Contains(strings.ToLower(err.Error()), "leader") {
		t.Errorf("%s: write error does not name the missing leader: %v", c.nodes[i].id, err)
	}
}
