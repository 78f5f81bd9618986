package ca_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"anchor/ca"
	"anchor/fsm"
	"anchor/internal/testenv"
)

// TestIssue_ConcurrentSerialsDistinct issues 10,000 certificates through
// three nodes at once. Each node signs with its own HSM, and every node's
// state must end with 10,000 distinct serials.
func TestIssue_ConcurrentSerialsDistinct(t *testing.T) {
	const total, workers = 10000, 48
	env := testenv.New(t, 3, testenv.Options{})
	key := p256(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	serials := make([]string, total)
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				m := env.Members[n%len(env.Members)]
				csr, err := buildCSR(key, "", fmt.Sprintf("host-%d.example.test", n))
				if err != nil {
					errs <- err
					return
				}
				issued, err := m.Issuer.Issue(ctx, &ca.Request{ChainID: env.ChainID, CSR: csr})
				if err != nil {
					errs <- fmt.Errorf("issue %d on %s: %w", n, m.Cluster.ID(), err)
					return
				}
				serials[n] = issued.Credential.Serial
			}
		}()
	}
feed:
	for n := range total {
		select {
		case jobs <- n:
		case err := <-errs:
			t.Error(err)
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("issued %d certificates through %d nodes in %s", total, len(env.Members), time.Since(start))

	distinct := map[string]bool{}
	for _, s := range serials {
		distinct[s] = true
	}
	if len(distinct) != total {
		t.Fatalf("%d distinct serials among %d certificates", len(distinct), total)
	}
	waitSameIndex(t, env)
	for _, m := range env.Members {
		err := m.State().View(func(tx *fsm.Tx) error {
			for _, s := range serials {
				if _, err := tx.Credential(s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Errorf("state of %s: %v", m.Cluster.ID(), err)
		}
	}
}

// waitSameIndex waits until every member has applied the same log index.
func waitSameIndex(t *testing.T, env *testenv.Env) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var behind *testenv.Member
		highest := uint64(0)
		for _, m := range env.Members {
			highest = max(highest, m.State().LastApplied())
		}
		for _, m := range env.Members {
			if m.State().LastApplied() < highest {
				behind = m
			}
		}
		if behind == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach applied index %d within a minute", behind.Cluster.ID(), highest)
		}
		// The timer covers a batch applied between the check and Watch.
		select {
		case <-behind.State().Watch():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
