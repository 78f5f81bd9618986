package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestTake_DistinctBindableOutsideEphemeralRange(t *testing.T) {
	ephLo, ephHi, err := ephemeralRange()
	if err != nil {
		t.Skipf("no ephemeral range to compare with: %v", err)
	}
	first, err := Take("127.0.0.1", 20)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Take("127.0.0.1", 20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range append(first, second...) {
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if p >= ephLo && p <= ephHi {
			t.Errorf("port %d lies in the ephemeral range %d-%d", p, ephLo, ephHi)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Errorf("port %d cannot be bound: %v", p, err)
			continue
		}
		l.Close()
	}
}

func TestTake_SkipsPortsInUse(t *testing.T) {
	lo, hi := searchRange()
	// Occupy a run of ports at the bottom of the range and check none of
	// them comes back.
	busy := map[int]bool{}
	for p := lo; p < lo+50 && p <= hi; p++ {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		defer l.Close()
		busy[p] = true
	}
	for range 20 {
		ports, err := Take("127.0.0.1", 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			if busy[p] {
				t.Fatalf("port %d is in use but was handed out", p)
			}
		}
	}
}
