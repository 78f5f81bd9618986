package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"anchor/bench/result"
)

// runGoBench reads `go test -bench` output on stdin and records each result
// line of the benchmarks under prefix as one run: Latency.P50 is the time
// per operation and Extra the other metrics, such as bytes/crl.
func runGoBench(args []string) error {
	fs := flag.NewFlagSet("gobench", flag.ExitOnError)
	out := fs.String("out", "results.jsonl", "JSON lines file that results are appended to")
	bench := fs.String("bench", "crl", "benchmark name for the records")
	prefix := fs.String("prefix", "BenchmarkCRLGeneration/", "Go benchmark name prefix to keep")
	_ = fs.Parse(args)
	records, err := parseGoBench(os.Stdin, *bench, *prefix)
	if err != nil {
		return err
	}
	if len(records) == 0 {
		return fmt.Errorf("no %s result lines on stdin", *prefix)
	}
	w := result.NewWriter(*out)
	for _, r := range records {
		if err := w.Write(r); err != nil {
			return err
		}
	}
	return nil
}

// parseGoBench parses lines such as
//
//	BenchmarkCRLGeneration/sign/10000-2  1  52345678 ns/op  412345 bytes/crl  48.1 cpu-ms/op
//
// numbering repeated names as runs.
func parseGoBench(r io.Reader, bench, prefix string) ([]*result.Record, error) {
	runs := map[string]int{}
	var out []*result.Record
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], prefix) {
			continue
		}
		name := strings.TrimPrefix(fields[0], prefix)
		if i := strings.LastIndex(name, "-"); i > 0 {
			name = name[:i] // the GOMAXPROCS suffix
		}
		runs[name]++
		rec := &result.Record{Bench: bench, Target: "anchor", Case: name, Conc: 1, Run: runs[name],
			Ops: 1, Extra: map[string]float64{}}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("parse %q: %w", sc.Text(), err)
			}
			unit := fields[i+1]
			if unit == "ns/op" {
				rec.Latency.P50 = v / 1e6
				rec.Seconds = v / 1e9
				rec.Rate = 1e9 / v
				continue
			}
			rec.Extra[strings.TrimSuffix(strings.ReplaceAll(unit, "/", "_per_"), "_per_crl")] = v
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}
