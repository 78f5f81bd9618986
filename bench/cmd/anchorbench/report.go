package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"anchor/bench/report"
	"anchor/bench/result"
)

// pageTitle is the title of docs/benchmarks.md.
const pageTitle = "Benchmarks"

// profileLines is how many lines of `go tool pprof -top` the page shows.
const profileLines = 32

func runReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	results := fs.String("results", "results.jsonl", "JSON lines file of the runs")
	doc := fs.String("doc", "docs/benchmarks.md", "page to update")
	images := fs.String("images", "docs/benchmarks", "directory for the PNG plots")
	meta := fs.String("meta", "", "directory with date.txt, commands.txt, loads.txt, "+
		"versions.txt and the pprof top lists ocsp.top and acme.top, written by run.sh")
	quick := fs.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "mark the page as a quick run")
	_ = fs.Parse(args)

	records, err := result.ReadFile(*results)
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	cases := report.Cases(result.Medians(records))
	date := time.Now().UTC().Format("2006-01-02 15:04 UTC")
	if lines := report.ReadLines(filepath.Join(*meta, "date.txt")); len(lines) > 0 {
		date = lines[0] // when run.sh started
	}
	m := report.Meta{
		Date: date, Machine: report.MachineInfo(),
		Quick:    *quick,
		Commands: report.ReadLines(filepath.Join(*meta, "commands.txt")),
		Loads:    report.ReadLines(filepath.Join(*meta, "loads.txt")),
		Versions: report.ReadLines(filepath.Join(*meta, "versions.txt")),
	}
	profiles := map[string][]string{}
	for _, name := range []string{"ocsp", "acme"} {
		lines := report.ReadLines(filepath.Join(*meta, name+".top"))
		profiles[name] = lines[:min(len(lines), profileLines)]
	}
	rel, err := filepath.Rel(filepath.Dir(*doc), *images)
	if err != nil {
		return err
	}
	regions := append([]report.Region{{Name: "summary", Body: report.Summary(cases, m)}},
		report.Sections(cases, filepath.ToSlash(rel), profiles)...)
	if err := report.Plots(cases, *images); err != nil {
		fmt.Fprintf(os.Stderr, "anchorbench report: %v\n", err)
	}
	return report.UpdateFile(*doc, pageTitle, regions)
}
