package acmeload

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure one load run.
type Options struct {
	// Accounts are the clients, one flow in flight each. Account i starts
	// on directory StartDirectory(i), by default i modulo the number of
	// directories.
	Accounts       []*Account
	StartDirectory func(i int) int
	// Name returns the identifier that account i orders. Reusing a name
	// per account lets Pebble reuse the authorization.
	Name func(i int) string
	// Warmup runs before the measured window and is not counted.
	Warmup, Duration time.Duration
	// PollInterval is the wait between polls of a pending authorization or
	// a processing order. Default 5ms.
	PollInterval time.Duration
	// OnIssued, if set, receives every issuance, measured or not, from the
	// account's goroutine.
	OnIssued func(*Issuance)
	// StallAbort, if set, ends the run early once no flow has completed
	// for that long in the measured window. Result.MaxGap then exceeds it.
	StallAbort time.Duration
	Logger     *slog.Logger
}

// Result is the measurement of one run.
type Result struct {
	Ops, Errors int
	Window      time.Duration
	Latencies   []time.Duration
	FirstError  error
	// MaxGap is the longest time in the measured window in which no flow
	// completed, counting from its start and to its end.
	MaxGap time.Duration
}

// Run issues certificates from every account until Warmup+Duration has
// passed. A failed flow is counted and the account tries again on the next
// directory, which is how a client fails over from a dead node.
func Run(ctx context.Context, opts Options) *Result {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 5 * time.Millisecond
	}
	start := time.Now()
	measureFrom := start.Add(opts.Warmup)
	end := measureFrom.Add(opts.Duration)
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()

	res := &Result{Window: end.Sub(measureFrom)}
	var ends []time.Time
	var mu sync.Mutex
	var wg sync.WaitGroup
	var last atomic.Int64 // UnixNano of the latest completed flow
	last.Store(measureFrom.UnixNano())
	if opts.StallAbort > 0 {
		go abortOnStall(ctx, cancel, &last, opts.StallAbort)
	}
	onIssued := opts.OnIssued
	opts.OnIssued = func(is *Issuance) {
		if t := is.End.UnixNano(); t > last.Load() {
			last.Store(t)
		}
		if onIssued != nil {
			onIssued(is)
		}
	}
	for i, acct := range opts.Accounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := i % len(acct.directories)
			if opts.StartDirectory != nil {
				node = opts.StartDirectory(i)
			}
			w := &worker{opts: &opts, acct: acct, index: i, node: node}
			w.loop(ctx, measureFrom)
			mu.Lock()
			defer mu.Unlock()
			res.Ops += w.ops
			res.Errors += w.errors
			res.Latencies = append(res.Latencies, w.latencies...)
			ends = append(ends, w.ends...)
			if res.FirstError == nil {
				res.FirstError = w.firstError
			}
		}()
	}
	wg.Wait()
	stop := end
	if now := time.Now(); now.Before(end) {
		stop = now // ended early by StallAbort
	}
	res.MaxGap = maxGap(ends, measureFrom, stop)
	if stalled := time.Since(time.Unix(0, last.Load())); opts.StallAbort > 0 && stalled > res.MaxGap {
		res.MaxGap = stalled
	}
	return res
}

// abortOnStall cancels the run once no flow has completed for limit.
func abortOnStall(ctx context.Context, cancel context.CancelFunc, last *atomic.Int64,
	limit time.Duration) {
	tick := time.NewTicker(limit / 8)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if now.Sub(time.Unix(0, last.Load())) > limit {
				cancel()
				return
			}
		}
	}
}

// maxGap returns the longest interval within [from, to] that contains
// none of times.
func maxGap(times []time.Time, from, to time.Time) time.Duration {
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	gap, last := time.Duration(0), from
	for _, t := range times {
		if t.Before(from) || t.After(to) {
			continue
		}
		gap, last = max(gap, t.Sub(last)), t
	}
	return max(gap, to.Sub(last))
}

type worker struct {
	opts        *Options
	acct        *Account
	index, node int

	ops, errors int
	latencies   []time.Duration
	ends        []time.Time
	firstError  error
}

func (w *worker) loop(ctx context.Context, measureFrom time.Time) {
	for ctx.Err() == nil {
		is, err := w.once(ctx)
		if ctx.Err() != nil {
			return // cut short by the end of the run
		}
		if err != nil {
			w.fail(err, measureFrom)
			continue
		}
		is.Node = w.node
		if w.opts.OnIssued != nil {
			w.opts.OnIssued(is)
		}
		w.ends = append(w.ends, is.End)
		if is.Start.After(measureFrom) {
			w.ops++
			w.latencies = append(w.latencies, is.Latency())
		}
	}
}

func (w *worker) once(ctx context.Context) (*Issuance, error) {
	core, err := w.acct.core(ctx, w.node)
	if err != nil {
		return nil, err
	}
	return issue(ctx, core, w.opts.Name(w.index), w.opts.PollInterval)
}

// fail counts a failed flow, moves the account to the next directory and
// waits briefly, so that a dead node does not turn into a busy loop.
func (w *worker) fail(err error, measureFrom time.Time) {
	if time.Now().After(measureFrom) {
		w.errors++
	}
	if w.firstError == nil {
		w.firstError = fmt.Errorf("account %d on directory %d: %w", w.index, w.node, err)
		if w.opts.Logger != nil {
			w.opts.Logger.Warn("acme flow failed", "account", w.index, "directory", w.node, "error", err)
		}
	}
	w.node = (w.node + 1) % len(w.acct.directories)
	time.Sleep(20 * time.Millisecond)
}

// Prime runs one flow for each account in turn, on its first directory,
// so that every account holds a valid authorization for its name before a
// concurrent run.
func Prime(ctx context.Context, accounts []*Account, name func(i int) string) error {
	for i, a := range accounts {
		core, err := a.core(ctx, 0)
		if err != nil {
			return err
		}
		if _, err := issue(ctx, core, name(i), 5*time.Millisecond); err != nil {
			return fmt.Errorf("prime account %d: %w", i, err)
		}
	}
	return nil
}
