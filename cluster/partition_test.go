package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writer proposes uniquely named writes through the members in turn and
// records those acknowledged.
type writer struct {
	mu    sync.Mutex
	acked []string
	seq   atomic.Int64
}

func (w *writer) run(ctx context.Context, members func() []*member) {
	for ctx.Err() == nil {
		ms := members()
		i := int(w.seq.Add(1))
		m := ms[i%len(ms)]
		name := fmt.Sprintf("w-%d", i)
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := createOrg(wctx, m.Node, name)
		cancel()
		if err == nil {
			w.mu.Lock()
			w.acked = append(w.acked, name)
			w.mu.Unlock()
		}
	}
}

func (w *writer) ackedNames() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.acked...)
}

func (w *writer) waitAcked(t *testing.T, atLeast int) {
	t.Helper()
	waitFor(t, 30*time.Second, func() error {
		if n := len(w.ackedNames()); n < atLeast {
			return fmt.Errorf("%d writes acknowledged, want %d", n, atLeast)
		}
		return nil
	})
}

func ids(ms []*member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.peer.ID)
	}
	return out
}

func TestPartition_FiveNodesMinorityCannotCommit(t *testing.T) {
	h := newHarness(t, false)
	h.net = newFaultNet()
	ms := h.peers("n", 5)
	h.bootstrap(ms)
	leader := leaderOf(t, testNodes(ms))

	// The old leader and one follower end up in the minority.
	var minority, majority []*member
	for i, m := range ms {
		if i == leader || i == (leader+1)%5 {
			minority = append(minority, m)
		} else {
			majority = append(majority, m)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &writer{}
	var live atomic.Value
	live.Store(majority)
	go w.run(ctx, func() []*member { return live.Load().([]*member) })
	w.waitAcked(t, 20)

	h.net.partition(ids(minority), ids(majority))
	// A write on the minority side fails and is never applied.
	mctx, mcancel := context.WithTimeout(context.Background(), 3*time.Second)
	err := createOrg(mctx, minority[0].Node, "minority-write")
	mcancel()
	if err == nil {
		t.Fatal("a write in the minority partition was acknowledged")
	}
	before := len(w.ackedNames())
	w.waitAcked(t, before+20) // the majority elects a leader and goes on

	// Kill the majority's leader: two of five cannot commit until healed.
	newLeader := leaderOf(t, testNodes(majority))
	majority[newLeader].stop()
	rest := append(append([]*member(nil), majority[:newLeader]...), majority[newLeader+1:]...)
	live.Store(rest)
	h.net.heal()
	before = len(w.ackedNames())
	w.waitAcked(t, before+20)
	cancel()

	survivors := append(append([]*member(nil), minority...), rest...)
	acked := w.ackedNames()
	for _, m := range survivors {
		for _, name := range acked {
			waitFor(t, 10*time.Second, func() error { return hasOrg(m.Node, name) })
		}
		if hasOrg(m.Node, "minority-write") == nil {
			t.Fatalf("%s applied the minority write", m.peer.ID)
		}
	}
	t.Logf("%d acknowledged writes present on all %d survivors", len(acked), len(survivors))
}

func TestPartition_ThreeNodesIsolatedLeaderStepsDown(t *testing.T) {
	h := newHarness(t, false)
	h.net = newFaultNet()
	ms := h.peers("n", 3)
	h.bootstrap(ms)
	leader := leaderOf(t, testNodes(ms))
	isolated := ms[leader]
	var others []*member
	for i, m := range ms {
		if i != leader {
			others = append(others, m)
		}
	}
	h.net.partition([]string{isolated.peer.ID}, ids(others))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var nl *NoLeaderError
	if err := createOrg(ctx, isolated.Node, "isolated"); !errors.As(err, &nl) {
		t.Fatalf("write on the isolated leader: got %v, want a no-leader error", err)
	}
	if err := createOrg(context.Background(), others[0].Node, "majority"); err != nil {
		t.Fatalf("write in the majority: %v", err)
	}
	h.net.heal()
	waitFor(t, 10*time.Second, func() error { return hasOrg(isolated.Node, "majority") })
	if hasOrg(isolated.Node, "isolated") == nil {
		t.Fatal("the isolated leader's write was applied after healing")
	}
}
