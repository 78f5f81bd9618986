package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a one-line progress bar on a terminal. It draws nothing
// when the writer is not a terminal, so that logs and pipes stay clean.
type progress struct {
	w       io.Writer // nil when disabled
	label   string
	total   int64 // 0 when unknown
	done    int64
	bytes   bool // count bytes, else items
	drawn   time.Time
	now     func() time.Time
	started bool
}

// redrawInterval limits redraws, so a fast stream does not flood the
// terminal.
const redrawInterval = 100 * time.Millisecond

const barWidth = 30

// newProgress returns a progress bar for total units (0 when unknown),
// drawn on the app's stderr only when it is a terminal.
func (a *app) newProgress(label string, total int64, bytes bool) *progress {
	p := &progress{label: label, total: total, bytes: bytes, now: time.Now}
	if a.stderrTerminal {
		p.w = a.err
	}
	return p
}

// add counts n more units done and redraws when due.
func (p *progress) add(n int64) {
	p.done += n
	if p.w == nil {
		return
	}
	if now := p.now(); !p.started || now.Sub(p.drawn) >= redrawInterval {
		p.started, p.drawn = true, now
		fmt.Fprintf(p.w, "\r%s", p.line())
	}
}

// finish draws the final state and ends the line.
func (p *progress) finish() {
	if p.w == nil {
		return
	}
	fmt.Fprintf(p.w, "\r%s\n", p.line())
}

// line renders the bar: the label, a bar and percentage when the total is
// known, and the count.
func (p *progress) line() string {
	count := p.amount(p.done)
	if p.total <= 0 {
		return fmt.Sprintf("%s %s", p.label, count)
	}
	frac := min(float64(p.done)/float64(p.total), 1)
	filled := int(frac * barWidth)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", barWidth-filled)
	return fmt.Sprintf("%s [%s] %3.0f%% %s/%s", p.label, bar, frac*100, count, p.amount(p.total))
}

func (p *progress) amount(n int64) string {
	if !p.bytes {
		return fmt.Sprint(n)
	}
	const mib = 1 << 20
	return fmt.Sprintf("%.1f MiB", float64(n)/mib)
}
