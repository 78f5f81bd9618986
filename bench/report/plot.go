package report

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"anchor/bench/result"
)

// series is one line of a plot.
type series struct {
	title  string
	dashed bool
	// color is a gnuplot line color index; 0 picks one by position.
	color  int
	points [][2]float64
}

// colorOf gives each server the same color in every plot.
func colorOf(target string) int {
	switch {
	case strings.HasPrefix(target, "anchor"):
		return 1
	case target == "openssl" || target == "pebble":
		return 2
	case target == "cfssl" || target == "hashicorp-raft":
		return 3
	case target == "hashicorp-raft+bbolt":
		return 5
	}
	return 4
}

// plot describes one PNG.
type plot struct {
	file, title, xlabel, ylabel string
	logX, logY                  bool
	lines                       []series
}

// Plots draws the PNGs that the sections link into dir with gnuplot. It
// returns the error of the first plot that failed; gnuplot missing is one.
func Plots(cs Cases, dir string) error {
	if _, err := exec.LookPath("gnuplot"); err != nil {
		return fmt.Errorf("gnuplot not found, plots not drawn: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range []plot{ocspThroughputPlot(cs), ocspLatencyPlot(cs), acmeLatencyPlot(cs),
		raftLatencyPlot(cs)} {
		if len(p.lines) == 0 {
			continue
		}
		if err := draw(p, dir); err != nil {
			return fmt.Errorf("plot %s: %w", p.file, err)
		}
	}
	return nil
}

func ocspThroughputPlot(cs Cases) plot {
	p := plot{file: "ocsp-throughput.png", title: "OCSP responses per second (one node)",
		xlabel: "connections", ylabel: "responses/s", logX: true}
	for _, name := range []string{"GET pre-signed", "GET nonce"} {
		for _, t := range []string{"anchor", "openssl", "cfssl"} {
			s := series{title: t + ", " + name, dashed: strings.Contains(name, "nonce"),
				color: colorOf(t)}
			for _, conc := range cs.Concs("ocsp") {
				if c := cs.Get("ocsp", t, name, conc); c != nil {
					s.points = append(s.points, [2]float64{float64(conc), c.Rate})
				}
			}
			if len(s.points) > 0 {
				p.lines = append(p.lines, s)
			}
		}
	}
	return p
}

func ocspLatencyPlot(cs Cases) plot {
	p := plot{file: "ocsp-latency.png", title: "OCSP GET pre-signed latency: p50 solid, p99 dashed",
		xlabel: "connections", ylabel: "milliseconds", logX: true, logY: true}
	for _, t := range []string{"anchor", "openssl", "cfssl"} {
		p50 := series{title: t + " p50", color: colorOf(t)}
		p99 := series{title: t + " p99", dashed: true, color: colorOf(t)}
		for _, conc := range cs.Concs("ocsp") {
			if c := cs.Get("ocsp", t, "GET pre-signed", conc); c != nil && c.Latency.P50 > 0 {
				p50.points = append(p50.points, [2]float64{float64(conc), c.Latency.P50})
				p99.points = append(p99.points, [2]float64{float64(conc), c.Latency.P99})
			}
		}
		if len(p50.points) > 0 {
			p.lines = append(p.lines, p50, p99)
		}
	}
	return p
}

func acmeLatencyPlot(cs Cases) plot {
	concs := cs.Concs("acme")
	p := plot{file: "acme-latency.png", title: "ACME flow latency distribution",
		xlabel: "milliseconds per flow", ylabel: "fraction of flows", logX: true}
	for _, conc := range concs {
		for _, t := range []string{"anchor-1", "anchor-3", "pebble"} {
			if c := cs.Get("acme", t, "issue", conc); c != nil {
				s := cdf(fmt.Sprintf("%s, %d accounts", t, conc), c.Latency, conc != slices.Max(concs))
				if t == "anchor-1" {
					s.color = 4
				} else {
					s.color = colorOf(t)
				}
				p.lines = append(p.lines, s)
			}
		}
	}
	return p
}

func raftLatencyPlot(cs Cases) plot {
	p := plot{file: "raft-latency.png", title: "Raft commit latency on the leader, 3 nodes",
		xlabel: "milliseconds per commit", ylabel: "fraction of commits", logX: true}
	for _, conc := range []int{1, 64} {
		for _, t := range []string{"anchor", "hashicorp-raft", "hashicorp-raft+bbolt"} {
			if c := cs.Get("raft", t, "apply on leader", conc); c != nil {
				s := cdf(fmt.Sprintf("%s, %d writers", t, conc), c.Latency, conc > 1)
				s.color = colorOf(t)
				p.lines = append(p.lines, s)
			}
		}
	}
	return p
}

func cdf(title string, l result.Latency, dashed bool) series {
	s := series{title: title, dashed: dashed}
	for i, v := range l.CDF {
		if v > 0 && i < len(result.CDFQuantiles) {
			s.points = append(s.points, [2]float64{v, result.CDFQuantiles[i]})
		}
	}
	return s
}

// draw writes the data and script of p to a temporary directory and runs
// gnuplot on them.
func draw(p plot, dir string) error {
	tmp, err := os.MkdirTemp("", "anchor-plot")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	out, err := filepath.Abs(filepath.Join(dir, p.file))
	if err != nil {
		return err
	}

	var script strings.Builder
	fmt.Fprintf(&script, "set terminal pngcairo size 900,540 font 'sans,10'\nset output '%s'\n", out)
	fmt.Fprintf(&script, "set title '%s'\nset xlabel '%s'\nset ylabel '%s'\nset grid\n"+
		"set key outside right\n", p.title, p.xlabel, p.ylabel)
	if p.logX {
		script.WriteString("set logscale x 2\n")
	}
	if p.logY {
		script.WriteString("set logscale y 10\n")
	} else {
		script.WriteString("set yrange [0:*]\n")
	}

	var plots []string
	for i, s := range p.lines {
		data := filepath.Join(tmp, fmt.Sprintf("s%d.dat", i))
		var b strings.Builder
		for _, pt := range s.points {
			fmt.Fprintf(&b, "%g %g\n", pt[0], pt[1])
		}
		if err := os.WriteFile(data, []byte(b.String()), 0o600); err != nil {
			return err
		}
		dash := 1
		if s.dashed {
			dash = 2
		}
		color := s.color
		if color == 0 {
			color = i%8 + 1
		}
		plots = append(plots, fmt.Sprintf("'%s' using 1:2 with linespoints lw 2 dt %d lc %d title '%s'",
			data, dash, color, s.title))
	}

	script.WriteString("plot " + strings.Join(plots, ", \\\n  ") + "\n")
	cmd := exec.Command("gnuplot")
	cmd.Stdin = strings.NewReader(script.String())
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gnuplot: %w: %s", err, msg)
	}
	return nil
}
