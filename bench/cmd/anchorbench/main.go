// Command anchorbench runs the process-level benchmarks of `make bench`
// against anchor-node clusters on loopback and against the peers, and
// renders the report. bench/run.sh calls it; see docs/benchmarks.md.
//
//	anchorbench acme     -out FILE -work DIR -node-bin BIN -pebble BIN
//	anchorbench ocsp     -out FILE -work DIR -node-bin BIN -cfssl BIN
//	anchorbench failover -out FILE -work DIR -node-bin BIN
//	anchorbench gobench  -out FILE < go-test-bench-output
//	anchorbench report   -results FILE -doc docs/benchmarks.md -images DIR -meta DIR
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"anchor/bench/result"
)

// common are the flags of every measuring subcommand.
type common struct {
	out     string
	work    string
	nodeBin string
	runs    int
	quick   bool
	logger  *slog.Logger
	results *result.Writer
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.out, "out", "results.jsonl", "JSON lines file that results are appended to")
	fs.StringVar(&c.work, "work", "", "directory for clusters, peers and logs (required)")
	fs.StringVar(&c.nodeBin, "node-bin", "bin/anchor-node", "anchor-node binary")
	fs.IntVar(&c.runs, "runs", 3, "runs of each case; the report takes their median")
	fs.BoolVar(&c.quick, "quick", os.Getenv("BENCH_QUICK") == "1",
		"short runs for a smoke test (default from BENCH_QUICK=1)")
}

func (c *common) check() error {
	if c.work == "" {
		return fmt.Errorf("-work is required")
	}
	if err := os.MkdirAll(c.work, 0o700); err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	c.results = result.NewWriter(c.out)
	c.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return nil
}

// window returns the warmup and measured durations of one run.
func (c *common) window(full time.Duration) (warmup, duration time.Duration) {
	if c.quick {
		return 500 * time.Millisecond, 2 * time.Second
	}
	return time.Second, full
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: anchorbench acme|ocsp|failover|gobench|report [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "acme":
		err = runACME(ctx, os.Args[2:])
	case "ocsp":
		err = runOCSP(ctx, os.Args[2:])
	case "failover":
		err = runFailover(ctx, os.Args[2:])
	case "report":
		err = runReport(os.Args[2:])
	case "gobench":
		err = runGoBench(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q: want acme, ocsp, failover, gobench or report", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "anchorbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
