package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgress_DrawsOnTerminal(t *testing.T) {
	var buf bytes.Buffer
	a := &app{streams: streams{err: &buf, stderrTerminal: true}}
	p := a.newProgress("revoking", 4, false)
	clock := time.Unix(0, 0)
	p.now = func() time.Time { return clock }
	p.add(1)
	clock = clock.Add(time.Second)
	p.add(1)
	p.finish()
	out := buf.String()
	for _, want := range []string{"\rrevoking [", " 25% 1/4", " 50% 2/4", "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output %q lacks %q", out, want)
		}
	}
}

func TestProgress_SilentWithoutTerminal(t *testing.T) {
	var buf bytes.Buffer
	a := &app{streams: streams{err: &buf}}
	p := a.newProgress("saving snapshot", 0, true)
	p.add(1 << 20)
	p.finish()
	if buf.Len() != 0 {
		t.Errorf("progress wrote %q to a non-terminal", buf.String())
	}
}

func TestProgress_ThrottlesRedraws(t *testing.T) {
	var buf bytes.Buffer
	a := &app{streams: streams{err: &buf, stderrTerminal: true}}
	p := a.newProgress("saving snapshot", 0, true)
	clock := time.Unix(0, 0)
	p.now = func() time.Time { return clock }
	for range 100 {
		p.add(1 << 10)
	}
	if n := strings.Count(buf.String(), "\r"); n != 1 {
		t.Errorf("%d redraws within one interval, want 1", n)
	}
}
