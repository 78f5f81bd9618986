//go:build e2e

package drills

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// maxNoLeaderWait bounds how long a write on a node without a leader may
// take to fail: the cluster's apply timeout (10s, cluster.Config) plus
// client overhead.
const maxNoLeaderWait = 15 * time.Second

// TestDrill_PartitionedNode cuts the leader, the node with the most to lose,
// off the compose network with docker network disconnect. The other two
// must elect a leader and keep issuing. From inside its container, the cut
// node must keep responding to OCSP requests for the certificates it has,
// and fail a write within maxNoLeaderWait with an error that names the
// missing leader. After docker network connect it must catch up and
// respond good for the certificates issued while it was away.
func TestDrill_PartitionedNode(t *testing.T) {
	c := threeNodeCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	acct, err := c.registerAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all := []int{0, 1, 2}
	before := issueN(ctx, t, c, acct, all, "partition-before", 3)

	leaderID, err := c.leader(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	cut := c.index(leaderID)
	others := without(all, cut)
	containerID, err := c.installProbe(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	network, ip, err := c.network(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}

	// 1. Cut the leader off; the other two elect a new one.
	if err := c.disconnect(ctx, cut, network); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	reconnected := false
	t.Cleanup(func() {
		if !reconnected {
			_ = c.connect(context.Background(), cut, network)
		}
	})
	newLeader, toLeader, err := c.waitLeader(ctx, others, leaderID, cutAt)
	if err != nil {
		t.Fatalf("no new leader among %s: %v", ids(c, others), err)
	}
	logf("disconnected leader %s (%s) from %s; new leader %s %s after docker network "+
		"disconnect returned", leaderID, ip, network, newLeader, ms(toLeader))

	// 2. Inside the partition: OCSP from local state, writes fail.
	checkPartitionedOCSP(ctx, t, containerID, before)
	checkPartitionedWrite(ctx, t, containerID, acct)

	// 3. The majority keeps issuing.
	during := issueN(ctx, t, c, acct, others, "partition-during", 3)
	logf("issued %d certificates on %s while %s was cut off, 0 failed", len(during),
		ids(c, others), c.nodes[cut].id)

	// 4. Reconnect. The node catches up and responds good for the new certificates.
	if err := c.connect(ctx, cut, network); err != nil {
		t.Fatal(err)
	}
	reconnected = true
	reconnectedAt := time.Now()
	_, ipAfter, err := c.network(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	if ipAfter != ip {
		t.Fatalf("%s came back at %s, not %s: its Raft and gRPC listeners stay bound to the old "+
			"address", c.nodes[cut].id, ipAfter, ip)
	}
	caughtUp, err := c.waitCaughtUp(ctx, cut)
	if err != nil {
		t.Fatalf("%s did not catch up: %v", c.nodes[cut].id, err)
	}
	logf("reconnected %s after %s cut off; caught up in %s", c.nodes[cut].id,
		ms(reconnectedAt.Sub(cutAt)), ms(caughtUp.Sub(reconnectedAt)))
	checks, bad := c.ocspAllGood(ctx, []int{cut}, during)
	logf("OCSP on %s after catch-up: %d checks, %d not good", c.nodes[cut].id, checks, bad)
	if bad > 0 {
		t.Errorf("%s responded other than good for %d of %d certificates issued while it was away",
			c.nodes[cut].id, bad, checks)
	}
}

// checkPartitionedOCSP queries the cut-off node, from inside its container,
// for the status of certificates issued before the cut.
func checkPartitionedOCSP(ctx context.Context, t *testing.T, containerID string, certs []*issued) {
	t.Helper()
	job := probeJob{Kind: probeOCSP, HTTPURL: "http://127.0.0.1:8080", TimeoutMS: 20000}
	for _, r := range certs {
		job.Certs = append(job.Certs, [2][]byte{r.leaf.Raw, r.issuer.Raw})
	}
	res, err := probe(ctx, containerID, job)
	if err != nil {
		t.Fatal(err)
	}
	good := 0
	for n, s := range res.Statuses {
		if s == "good" {
			good++
		} else {
			t.Errorf("cut-off node: OCSP for %s: %s", certs[n].leaf.DNSNames[0], s)
		}
	}
	if res.Error != "" {
		t.Errorf("cut-off node: OCSP probe: %s", res.Error)
	}
	logf("cut-off node responded good over OCSP for %d of %d certificates in %dms", good,
		len(certs), res.ElapsedMS)
}

// checkPartitionedWrite tries one ACME issuance on the cut-off node, from
// inside its container, and expects a no-leader error within
// maxNoLeaderWait.
func checkPartitionedWrite(ctx context.Context, t *testing.T, containerID string,
	acct *acmeAccount) {
	t.Helper()
	key, err := acct.keyDER()
	if err != nil {
		t.Fatal(err)
	}
	res, err := probe(ctx, containerID, probeJob{
		Kind: probeIssue, ACMEDir: "https://127.0.0.1:8443" + acmeDirPath,
		CAFile: "/var/lib/anchor/tls/ca.pem", AccountKey: key, AccountURL: acct.reg.Location,
		Domain: "partition-write.drill.test", TimeoutMS: 60000,
	})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Duration(res.ElapsedMS) * time.Millisecond
	logf("write on the cut-off node failed after %s: %s", ms(elapsed), res.Error)
	if res.Error == "" {
		t.Fatal("a certificate was issued by a node without a leader")
	}
	if elapsed > maxNoLeaderWait {
		t.Errorf("write took %s to fail, want at most %s", ms(elapsed), maxNoLeaderWait)
	}
	if !strings.Contains(strings.ToLower(res.Error), "leader") {
		t.Errorf("write error does not name the missing leader: %s", res.Error)
	}
}

// issueN issues n certificates over the candidate nodes, failing the test
// on any error.
func issueN(ctx context.Context, t *testing.T, c *drillCluster, acct *acmeAccount,
	candidates []int, prefix string, n int) []*issued {
	t.Helper()
	var out []*issued
	for k := 0; k < n; k++ {
		domain := fmt.Sprintf("%s-%02d.drill.test", prefix, k)
		r, err := c.obtainWithFailover(ctx, acct, candidates, k, domain, 2*len(candidates))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func ids(c *drillCluster, among []int) string {
	var s []string
	for _, i := range among {
		s = append(s, c.nodes[i].id)
	}
	return strings.Join(s, ",")
}
