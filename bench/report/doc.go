// Package report turns benchmark results into the generated parts of
// docs/benchmarks.md and into PNG plots drawn with gnuplot.
//
// The page is shared: other sections are written by hand. The generated
// parts sit between "<!-- bench:begin NAME -->" and "<!-- bench:end NAME
// -->" lines, and Update replaces only those, so text outside them,
// including notes under a generated table, survives a new run.
package report
