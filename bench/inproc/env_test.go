//go:build bench

package inproc

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"anchor/bench/result"
)

// writer appends to BENCH_OUT, default results.jsonl in the package
// directory.
func writer() *result.Writer {
	path := os.Getenv("BENCH_OUT")
	if path == "" {
		path = "results.jsonl"
	}
	return result.NewWriter(path)
}

func quick() bool { return os.Getenv("BENCH_QUICK") == "1" }

// runs is BENCH_RUNS, default 3.
func runs() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_RUNS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// window returns the warmup and measured time of one run.
func window(full time.Duration) (time.Duration, time.Duration) {
	if quick() {
		return 300 * time.Millisecond, time.Second
	}
	return time.Second, full
}

// outcome is what drive measured.
type outcome struct {
	ops, errors int
	window      time.Duration
	latencies   []time.Duration
	firstError  error
}

func (o *outcome) record(bench, target, name string, conc, run int) *result.Record {
	return &result.Record{
		Bench: bench, Target: target, Case: name, Conc: conc, Run: run,
		Ops: o.ops, Errors: o.errors, Seconds: o.window.Seconds(),
		Rate: float64(o.ops) / o.window.Seconds(), Latency: result.Summarize(o.latencies),
	}
}

// errStop, returned by an op, ends its goroutine without counting a call.
var errStop = errors.New("stop")

// drive calls op from conc goroutines in a closed loop for warmup+measure,
// or until op returns errStop, and counts the calls that started after
// warmup.
func drive(conc int, warmup, measure time.Duration, op func(ctx context.Context, worker int) error) *outcome {
	start := time.Now()
	from := start.Add(warmup)
	ctx, cancel := context.WithDeadline(context.Background(), from.Add(measure))
	defer cancel()
	out := &outcome{window: measure}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ops, errs int
			var lats []time.Duration
			var first error
			for ctx.Err() == nil {
				t0 := time.Now()
				err := op(ctx, w)
				d := time.Since(t0)
				if errors.Is(err, errStop) {
					break
				}
				if ctx.Err() != nil || t0.Before(from) {
					continue
				}
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				ops++
				lats = append(lats, d)
			}
			mu.Lock()
			defer mu.Unlock()
			out.ops += ops
			out.errors += errs
			out.latencies = append(out.latencies, lats...)
			if out.firstError == nil {
				out.firstError = first
			}
		}()
	}
	wg.Wait()
	return out
}

// save writes rec and fails the test when nothing succeeded.
func save(t *testing.T, o *outcome, rec *result.Record) {
	t.Helper()
	if err := writer().Write(rec); err != nil {
		t.Fatal(err)
	}
	if o.ops == 0 {
		t.Fatalf("%s %s %s: no operation succeeded: %v", rec.Bench, rec.Target, rec.Case, o.firstError)
	}
	if o.firstError != nil {
		t.Logf("%s %s %s: %d errors, first: %v", rec.Bench, rec.Target, rec.Case, o.errors, o.firstError)
	}
}
