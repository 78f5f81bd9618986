//go:build bench

package inproc

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"anchor/fsm"
	"anchor/internal/testenv"
)

// raftConcs are the numbers of goroutines that commit at once.
var raftConcs = []int{1, 16, 64}

// TestBenchRaft measures commits through anchor's cluster.Node.Apply and
// through a bare hashicorp/raft cluster, once with a state machine that only
// counts and once with one that writes every batch to bbolt. All commit the
// same bytes: an encoded acme.nonce.redeem command, which anchor's state
// machine applies (one small bbolt write).
func TestBenchRaft(t *testing.T) {
	var seq atomic.Uint64
	payload := func() *fsm.Command {
		return fsm.MustCommand(fsm.CmdACMERedeemNonce, fsm.RedeemACMENonce{
			Nonce:   fmt.Sprintf("bench-%020d", seq.Add(1)),
			Expires: time.Now().Add(time.Hour).UTC().Truncate(time.Second),
		})
	}
	for _, bare := range []struct {
		target  string
		durable bool
	}{{"hashicorp-raft", false}, {"hashicorp-raft+bbolt", true}} {
		t.Run(bare.target, func(t *testing.T) {
			leader := newBareCluster(t, bare.durable).leader(t)
			data, err := payload().Encode()
			if err != nil {
				t.Fatal(err)
			}
			for _, conc := range raftConcs {
				benchCommits(t, bare.target, "apply on leader", conc, func(context.Context) error {
					return leader.Apply(data, 10*time.Second).Error()
				})
			}
		})
	}
	t.Run("anchor", func(t *testing.T) {
		env := testenv.New(t, 3, testenv.Options{})
		leader := leaderOf(t, env)
		apply := func(m *testenv.Member) func(context.Context) error {
			return func(ctx context.Context) error {
				_, err := m.Apply(ctx, payload())
				return err
			}
		}
		for _, conc := range raftConcs {
			benchCommits(t, "anchor", "apply on leader", conc, apply(env.Members[leader]))
		}
		follower := env.Members[(leader+1)%len(env.Members)]
		benchCommits(t, "anchor", "apply on follower", 16, apply(follower))
	})
}

func benchCommits(t *testing.T, target, name string, conc int, commit func(context.Context) error) {
	warmup, measure := window(4 * time.Second)
	for run := 1; run <= runs(); run++ {
		o := drive(conc, warmup, measure, func(ctx context.Context, _ int) error { return commit(ctx) })
		save(t, o, o.record("raft", target, name, conc, run))
	}
}
