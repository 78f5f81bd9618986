//go:build e2e

package drills

import (
	"slices"
	"time"
)

// latencies summarizes durations as count, median, 95th percentile and
// maximum.
type latencies []time.Duration

func (l latencies) summary() (p50, p95, max time.Duration) {
	if len(l) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[int(q*float64(len(s)-1))] }
	return at(0.5), at(0.95), s[len(s)-1]
}

// ms rounds a duration to milliseconds for reports.
func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
