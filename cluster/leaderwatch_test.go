package cluster

import (
	"testing"
)

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestLeaderWatch_WakesOnlyAfterChange(t *testing.T) {
	var w leaderWatch
	first := w.next()
	if closed(first) {
		t.Fatal("channel closed before any change")
	}
	w.changed()
	if !closed(first) {
		t.Fatal("channel taken before a change not closed by it")
	}
	second := w.next()
	if closed(second) {
		t.Fatal("channel taken after the change closed by it")
	}
	w.changed()
	if !closed(second) {
		t.Fatal("channel taken before the second change not closed by it")
	}
}
