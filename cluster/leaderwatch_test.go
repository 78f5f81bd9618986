package cluster

import (
	"testing"
)

func TestLeaderWatch_WakesOnlyAfterChange(t *testing.T) {
	w := newLeaderWatch()
	first := w.next()
	select {
	case <-first:
		t.Fatal("channel closed before any change")
	default:
	}
	w.changed()
	select {
	case <-first:
	default:
		t.Fatal("channel taken before a change not closed by it")
	}
	second := w.next()
	select {
	case <-second:
		t.Fatal("channel taken after the change closed by it")
	default:
	}
	w.changed()
	<-second
}
