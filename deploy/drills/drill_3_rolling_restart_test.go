//go:build e2e

package drills

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// OCSP load of the rolling restart: each worker sends one request per
// ocspInterval, and the load stops at ocspMaxRequests requests in all.
const (
	ocspWorkers     = 4
	ocspInterval    = 20 * time.Millisecond
	ocspMaxRequests = 60000
)

// TestDrill_RollingRestartUnderOCSPLoad restarts every node in turn with
// docker restart (SIGTERM, then start) while OCSP requests for a few
// certificates run against the published ports of all nodes. A client
// that meets a stopped node sends the request to the next node, as a
// relying party does with the certificate's several OCSP URLs. No request may fail on every
// node. Each restart waits until the node has caught up before the next.
func TestDrill_RollingRestartUnderOCSPLoad(t *testing.T) {
	c := threeNodeCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	acct, err := c.registerAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all := []int{0, 1, 2}
	certs := issueN(ctx, t, c, acct, all, "rolling", 3)

	load := startOCSPLoad(ctx, c, all, certs)
	for i := range c.nodes {
		restartInTurn(ctx, t, c, i)
	}
	st := load.stop()

	logf("OCSP load: %d requests, %d failed on every node, %d needed another node "+
		"(%d failed attempts); latency p50 %s, p95 %s, max %s", st.requests, st.failed,
		st.failedOver, st.failedAttempts, ms(st.p50), ms(st.p95), ms(st.max))
	if st.requests == 0 {
		t.Fatal("the OCSP load sent no request")
	}
	if st.failed > 0 {
		t.Errorf("%d of %d OCSP requests failed on every node; last error: %s", st.failed,
			st.requests, st.lastErr)
	}
}

// restartInTurn restarts node i, measures its downtime and, when it was the
// leader, the time until another node leads.
func restartInTurn(ctx context.Context, t *testing.T, c *drillCluster, i int) {
	t.Helper()
	leaderID, err := c.leader(ctx, i)
	if err != nil {
		t.Fatal(err)
	}
	wasLeader := leaderID == c.nodes[i].id
	start := time.Now()
	var newLeader <-chan string
	if wasLeader {
		newLeader = watchNewLeader(ctx, c, i, start)
	}

	if err := c.restart(ctx, i); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	caughtUp, err := c.waitCaughtUp(ctx, i)
	if err != nil {
		t.Fatalf("%s did not catch up after restart: %v", c.nodes[i].id, err)
	}
	role := "follower"
	if wasLeader {
		role = "leader"
	}
	logf("restarted %s %s: docker restart took %s, caught up %s later", role, c.nodes[i].id,
		ms(restarted.Sub(start)), ms(caughtUp.Sub(restarted)))
	if wasLeader {
		logf("  new leader: %s", <-newLeader)
	}
}

// watchNewLeader waits in the background for a node other than the leader
// i to lead, and sends a description of the result. The restarted node may
// win the election again, and then the wait ends after 30 seconds.
func watchNewLeader(ctx context.Context, c *drillCluster, i int, start time.Time) <-chan string {
	out := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		others := without([]int{0, 1, 2}, i)
		id, took, err := c.waitLeader(ctx, others, c.nodes[i].id, start)
		if err != nil {
			out <- "none among the other nodes within 30s"
			return
		}
		out <- fmt.Sprintf("%s, %s after docker restart began", id, ms(took))
	}()
	return out
}

// ocspLoad sends OCSP requests until stopped.
type ocspLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	requests, failed, failedOver, failedAttempts atomic.Int64

	mu      sync.Mutex
	lat     latencies
	lastErr string
}

type ocspLoadStats struct {
	requests, failed, failedOver, failedAttempts int64
	p50, p95, max                                time.Duration
	lastErr                                      string
}

func startOCSPLoad(ctx context.Context, c *drillCluster, nodes []int, certs []*issued) *ocspLoad {
	ctx, cancel := context.WithCancel(ctx)
	l := &ocspLoad{cancel: cancel}
	for w := 0; w < ocspWorkers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(ocspInterval)
			defer tick.Stop()
			for n := w; ; n += ocspWorkers {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if l.requests.Add(1) > ocspMaxRequests {
					return
				}
				l.one(ctx, c, nodes, n, certs[n%len(certs)])
			}
		}()
	}
	return l
}

// one sends a request to nodes[n%len] and, on failure, to the next nodes.
func (l *ocspLoad) one(ctx context.Context, c *drillCluster, nodes []int, n int, r *issued) {
	start := time.Now()
	for attempt := 0; attempt < len(nodes); attempt++ {
		i := nodes[(n+attempt)%len(nodes)]
		status, err := ocspStatus(ctx, c.nodes[i].httpURL, r.leaf, r.issuer)
		if ctx.Err() != nil {
			l.requests.Add(-1) // stopped, not failed
			return
		}
		if err == nil && status == "good" {
			if attempt > 0 {
				l.failedOver.Add(1)
				l.failedAttempts.Add(int64(attempt))
			}
			l.record(time.Since(start), "")
			return
		}
		msg := status
		if err != nil {
			msg = err.Error()
		}
		l.record(0, c.nodes[i].id+": "+msg)
	}
	l.failed.Add(1)
}

func (l *ocspLoad) record(d time.Duration, errText string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if errText != "" {
		l.lastErr = errText
		return
	}
	l.lat = append(l.lat, d)
}

func (l *ocspLoad) stop() ocspLoadStats {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	p50, p95, max := l.lat.summary()
	return ocspLoadStats{
		requests: min(l.requests.Load(), ocspMaxRequests), failed: l.failed.Load(),
		failedOver: l.failedOver.Load(), failedAttempts: l.failedAttempts.Load(),
		p50: p50, p95: p95, max: max, lastErr: l.lastErr,
	}
}
