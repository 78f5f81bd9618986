package cluster

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"anchor/internal/logrepeat"
)

// repeatInterval is the shortest time between two records of one repeated
// warning or error, such as a heartbeat to a node that is down, which Raft
// logs several times a second.
const repeatInterval = 10 * time.Second

// slogWriter carries hashicorp/raft's and memberlist's log lines into the
// node's slog handler, one record a line, so a node writes one log stream.
// A warning or error that repeats with the same peer is written once per
// repeatInterval, with the number of copies left out since the last one.
type slogWriter struct {
	logger  *slog.Logger
	repeats *logrepeat.Filter
}

func newSlogWriter(logger *slog.Logger) slogWriter {
	return slogWriter{logger: logger, repeats: logrepeat.New(repeatInterval, nil)}
}

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	switch {
	case strings.Contains(line, "[ERROR]"):
		level = slog.LevelError
	case strings.Contains(line, "[WARN]"):
		level = slog.LevelWarn
	case strings.Contains(line, "[DEBUG]"), strings.Contains(line, "[TRACE]"):
		level = slog.LevelDebug
	}
	if level < slog.LevelWarn {
		w.logger.Log(context.Background(), level, "raft", "line", line)
		return len(p), nil
	}
	emit, suppressed := w.repeats.Allow(repeatKey(line))
	if !emit {
		return len(p), nil
	}
	if suppressed > 0 {
		w.logger.Log(context.Background(), level, "raft", "line", line, "repeats_suppressed", suppressed)
	} else {
		w.logger.Log(context.Background(), level, "raft", "line", line)
	}
	return len(p), nil
}

// repeatKey returns the part of a log line that stays the same when it
// repeats: the level, the message and the peer, without the timestamp and
// without the fields that vary (error text, backoff and elapsed times).
func repeatKey(line string) string {
	if i := strings.Index(line, "["); i >= 0 {
		line = line[i:]
	}
	for _, field := range []string{" error=", " backoff time=", " time=", " last-leader-addr="} {
		if i := strings.Index(line, field); i >= 0 {
			line = line[:i]
		}
	}
	return line
}
