// Package logrepeat limits how often a node writes a log record that
// repeats, such as a heartbeat error for a node that is down or a signing
// error for a CA key that no HSM of this node holds. Filter.Allow passes
// the first copy at once and later copies at most once per interval, with
// the number left out in between.
package logrepeat

import (
	"log/slog"
	"sync"
	"time"
)

// maxKeys bounds the keys a Filter tracks. When it is reached the Filter
// clears them all, so a record may then be written early once.
const maxKeys = 1024

// Filter decides which copies of a repeated record to write. Its methods
// are safe for concurrent use.
type Filter struct {
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	seen map[string]*state
}

type state struct {
	last       time.Time
	suppressed int
}

// New returns a Filter that writes one copy of a record per interval. now
// is the clock, time.Now when nil.
func New(interval time.Duration, now func() time.Time) *Filter {
	if now == nil {
		now = time.Now
	}
	return &Filter{interval: interval, now: now, seen: map[string]*state{}}
}

// Allow reports whether a record with key should be written now, and how
// many copies were left out since the last one written.
func (f *Filter) Allow(key string) (bool, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	st, ok := f.seen[key]
	if !ok {
		if len(f.seen) >= maxKeys {
			clear(f.seen)
		}
		f.seen[key] = &state{last: now}
		return true, 0
	}
	if now.Sub(st.last) < f.interval {
		st.suppressed++
		return false, 0
	}
	suppressed := st.suppressed
	st.last, st.suppressed = now, 0
	return true, suppressed
}

// Warn writes a warning to logger unless a copy with key was written
// within the interval. A record written after left-out copies carries
// their number as repeats_suppressed.
func (f *Filter) Warn(logger *slog.Logger, key, msg string, args ...any) {
	ok, suppressed := f.Allow(key)
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "repeats_suppressed", suppressed)
	}
	logger.Warn(msg, args...)
}
