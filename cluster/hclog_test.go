package cluster

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"anchor/internal/logrepeat"
)

func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("decode log record %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

func TestSlogWriter_RepeatedErrorRateLimited(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	w := slogWriter{
		logger:  slog.New(slog.NewJSONHandler(&buf, nil)),
		repeats: logrepeat.New(repeatInterval, func() time.Time { return now }),
	}
	heartbeat := func(peer string, backoff int) {
		line := now.Format(time.RFC3339) + " [ERROR] raft: failed to heartbeat to: peer=" + peer +
			" backoff time=" + time.Duration(backoff*int(time.Millisecond)).String() + " error=\"dial tcp: connection refused\"\n"
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		heartbeat("127.0.0.1:7001", 10*(i+1))
		now = now.Add(100 * time.Millisecond)
	}
	heartbeat("127.0.0.1:7002", 10) // another peer is its own line
	if _, err := w.Write([]byte("2026-12-04T12:00:03Z [INFO]  raft: entering follower state\n")); err != nil {
		t.Fatal(err)
	}
	if got := records(t, &buf); len(got) != 3 {
		t.Fatalf("%d records within the interval, want 3 (first heartbeat error, other peer, info)", len(got))
	}

	now = now.Add(repeatInterval)
	heartbeat("127.0.0.1:7001", 500)
	got := records(t, &buf)
	if len(got) != 4 {
		t.Fatalf("%d records after the interval, want 4", len(got))
	}
	last := got[3]
	if last["level"] != "ERROR" {
		t.Errorf("level %v, want ERROR", last["level"])
	}
	if n, _ := last["repeats_suppressed"].(float64); n != 29 {
		t.Errorf("repeats_suppressed %v, want 29", last["repeats_suppressed"])
	}
}

func TestRepeatKey_DropsVaryingFields(t *testing.T) {
	a := repeatKey(`2026-12-04T12:00:00Z [WARN]  raft: failed to contact: server-id=node2 time=2.5s`)
	b := repeatKey(`2026-12-04T12:00:09Z [WARN]  raft: failed to contact: server-id=node2 time=11.5s`)
	c := repeatKey(`2026-12-04T12:00:09Z [WARN]  raft: failed to contact: server-id=node3 time=11.5s`)
	if a != b {
		t.Errorf("keys of one repeated line differ: %q and %q", a, b)
	}
	if a == c {
		t.Errorf("lines about different servers share the key %q", a)
	}
}
