package acme

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"anchor/fsm"
	"anchor/internal/testenv"
)

// blockingHTTP01 serves the key authorization on lis, but holds every
// request until release is closed, so a validation stays in flight for as
// long as the test needs. hits receives one value per request, without
// blocking.
type blockingHTTP01 struct {
	hits    chan struct{}
	release chan struct{}
}

func serveBlockingHTTP01(t *testing.T, lis net.Listener, keyAuth string) *blockingHTTP01 {
	t.Helper()
	b := &blockingHTTP01{hits: make(chan struct{}, 16), release: make(chan struct{})}
	serveOn(t, lis, func(w http.ResponseWriter, r *http.Request) {
		select {
		case b.hits <- struct{}{}:
		default:
		}
		select {
		case <-b.release:
			_, _ = w.Write([]byte(keyAuth))
		case <-r.Context().Done():
		}
	})
	return b
}

// awaitHit waits until a validation request arrives.
func (b *blockingHTTP01) awaitHit(t *testing.T) {
	t.Helper()
	select {
	case <-b.hits:
	case <-time.After(15 * time.Second):
		t.Fatal("no validation request within 15 s")
	}
}

// TestTakeover_StalledValidation stops the node that validates a challenge
// during its attempt. The leader takes the validation over after the
// node's deadline, without another request from the client.
func TestTakeover_StalledValidation(t *testing.T) {
	d := newTestDNS(t)
	lis, port := reservePort(t)
	timing := Options{HTTP01Port: port, DNSResolver: d.addr,
		ValidationTimeout: time.Second, TakeoverGrace: 200 * time.Millisecond,
		TakeoverInterval: 50 * time.Millisecond}
	optsA, optsB := timing, timing
	optsA.NodeID = "node-a"
	optsB.NodeID = "node-b"
	optsB.IsLeader = func() bool { return true }
	e := newProtoEnv(t, optsA)
	e.secondServer(t, optsB)

	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, _ := c.newOrder("www.example.test")
	ch := challengeOf(t, c.authz(o.Authorizations[0]), challengeHTTP01)
	responder := serveBlockingHTTP01(t, lis, c.keyAuthorization(ch.Token))
	if resp := c.post(ch.URL, map[string]any{}); resp.StatusCode != http.StatusOK {
		t.Fatalf("challenge POST: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	responder.awaitHit(t)
	e.server.Close() // node A stops during its attempt and records no result
	close(responder.release)

	var stored *fsm.ACMEChallenge
	e.view(func(tx *fsm.Tx) error {
		var err error
		stored, _, err = tx.ACMEChallenge(challengeID(ch.URL))
		return err
	})
	if stored.Status != fsm.ACMEStatusProcessing || stored.ValidatingNode != "node-a" {
		t.Fatalf("challenge after node A stopped: %s on %q, want processing on node-a",
			stored.Status, stored.ValidatingNode)
	}

	waitFor(t, 15*time.Second, "the leader to validate the challenge", func() bool {
		return c.authz(o.Authorizations[0]).Status != fsm.ACMEStatusPending
	})
	e.view(func(tx *fsm.Tx) error {
		var err error
		stored, _, err = tx.ACMEChallenge(challengeID(ch.URL))
		return err
	})
	if stored.Status != fsm.ACMEStatusValid || stored.ValidatingNode != "node-b" {
		t.Errorf("challenge %s on %q, want valid on node-b", stored.Status, stored.ValidatingNode)
	}
	if n := e.applier.count(fsm.CmdACMEClaimChallenge); n < 1 {
		t.Errorf("%d claims committed, want at least 1", n)
	}
}

func challengeID(url string) string {
	return url[strings.LastIndex(url, "/")+1:]
}

// TestCluster_NewLeaderTakesOverValidation stops the leader of a
// three-node cluster while it validates a challenge. The new leader takes
// the validation over, and the client finishes the order on a surviving
// node.
func TestCluster_NewLeaderTakesOverValidation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	env := testenv.New(t, 3, testenv.Options{})
	lis, port := reservePort(t)
	var acmes []*clusterACME
	for i, m := range env.Members {
		acmes = append(acmes, startClusterACME(t, env, i, Options{
			HTTP01Port: port, NodeID: m.Cluster.ID(), IsLeader: m.Cluster.IsLeader,
			ValidationTimeout: 2 * time.Second, TakeoverGrace: 500 * time.Millisecond,
			TakeoverInterval: 100 * time.Millisecond,
		}))
	}
	leader := leaderIndex(t, env)
	c := acmes[leader].newClient(t)
	c.register(addClusterEAB(t, env, "kid-takeover", nil))
	o, _ := c.newOrder("takeover.outside.test")
	ch := challengeOf(t, c.authz(o.Authorizations[0]), challengeHTTP01)
	responder := serveBlockingHTTP01(t, lis, c.keyAuthorization(ch.Token))
	if resp := c.post(ch.URL, map[string]any{}); resp.StatusCode != http.StatusOK {
		t.Fatalf("challenge POST: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	responder.awaitHit(t)
	acmes[leader].srv.Close()
	env.Members[leader].Stop()
	close(responder.release)

	// The client moves to a surviving node: same key and account, URLs of
	// that node.
	other := acmes[(leader+1)%len(acmes)]
	moved := *c
	moved.root, moved.http = other.root, other.http
	rewrite := func(u string) string { return other.root + strings.TrimPrefix(u, c.root) }
	moved.kid = rewrite(c.kid)
	var a authzJSON
	waitFor(t, 30*time.Second, "a new leader to validate the challenge", func() bool {
		// The surviving node may not have applied the authorization yet.
		resp := moved.post(rewrite(o.Authorizations[0]), nil)
		if resp.StatusCode == http.StatusNotFound {
			resp.Body.Close()
			return false
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("authz: status %d: %s", resp.StatusCode, readBody(t, resp))
		}
		decodeJSON(t, resp, &a)
		return a.Status != fsm.ACMEStatusPending
	})
	if a.Status != fsm.ACMEStatusValid {
		t.Fatalf("authz status = %q: %+v", a.Status, a.Challenges)
	}
	stopped := env.Members[leader].Cluster.ID()
	err := env.Members[(leader+1)%len(acmes)].State().View(func(tx *fsm.Tx) error {
		stored, _, err := tx.ACMEChallenge(challengeID(ch.URL))
		if err == nil && (stored.ValidatingNode == stopped || stored.ValidatingNode == "") {
			t.Errorf("challenge validated by %q, want a node other than the stopped %s",
				stored.ValidatingNode, stopped)
		}
		return err
	})
	if err != nil {
		t.Fatalf("read challenge: %v", err)
	}

	resp := moved.post(rewrite(o.Finalize),
		map[string]string{"csr": csrFor(t, "takeover.outside.test")})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("finalize on a surviving node: status %d: %s", resp.StatusCode,
			readBody(t, resp))
	}
	var final orderJSON
	decodeJSON(t, resp, &final)
	if final.Status != fsm.ACMEStatusValid || final.Certificate == "" {
		t.Fatalf("order after finalize = %+v, want valid with a certificate", final)
	}
	cert := moved.post(final.Certificate, nil)
	verifyLeaf(t, env, []byte(readBody(t, cert)), "takeover.outside.test")
}

// leaderIndex waits until a member leads and returns its index.
func leaderIndex(t *testing.T, env *testenv.Env) int {
	t.Helper()
	leader := -1
	waitFor(t, 10*time.Second, "a leader", func() bool {
		for i, m := range env.Members {
			if m.Cluster.IsLeader() {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}
