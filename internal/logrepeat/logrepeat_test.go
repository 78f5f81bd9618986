package logrepeat

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestAllow_OncePerInterval(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	f := New(10*time.Second, func() time.Time { return now })

	if ok, n := f.Allow("a"); !ok || n != 0 {
		t.Fatalf("first copy: allow %v with %d suppressed, want true with 0", ok, n)
	}
	for range 5 {
		now = now.Add(time.Second)
		if ok, _ := f.Allow("a"); ok {
			t.Fatalf("copy at %s allowed within the interval", now.Format(time.TimeOnly))
		}
	}
	if ok, _ := f.Allow("b"); !ok {
		t.Error("first copy of another key was suppressed")
	}
	now = now.Add(5 * time.Second)
	if ok, n := f.Allow("a"); !ok || n != 5 {
		t.Errorf("copy after the interval: allow %v with %d suppressed, want true with 5", ok, n)
	}
}

func TestWarn_CountsLeftOutCopies(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	f := New(time.Minute, func() time.Time { return now })
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	for range 4 {
		f.Warn(logger, "ca1", "signing failed", "ca", "ca1")
	}
	now = now.Add(time.Minute)
	f.Warn(logger, "ca1", "signing failed", "ca", "ca1")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d records, want 2:\n%s", len(lines), buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if _, ok := first["repeats_suppressed"]; ok {
		t.Errorf("first record has repeats_suppressed: %v", first)
	}
	if first["level"] != "WARN" || first["ca"] != "ca1" {
		t.Errorf("first record %v, want a warning about ca1", first)
	}
	if n, _ := second["repeats_suppressed"].(float64); n != 3 {
		t.Errorf("repeats_suppressed %v, want 3", second["repeats_suppressed"])
	}
}

func TestAllow_ClearsKeysAtTheBound(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	f := New(time.Minute, func() time.Time { return now })
	for i := range maxKeys {
		f.Allow(string(rune('a' + i)))
	}
	f.Allow("new") // clears the remembered keys, then remembers "new"
	if ok, _ := f.Allow(string(rune('a'))); !ok {
		t.Error("key remembered past the bound was still suppressed")
	}
	if ok, _ := f.Allow("new"); ok {
		t.Error("key added after clearing was not remembered")
	}
}
