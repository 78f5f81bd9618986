package acme

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"anchor/cluster"
)

func TestProblemFor_NoLeaderHidesInternals(t *testing.T) {
	err := fmt.Errorf("apply acme.order.create: %w", &cluster.NoLeaderError{
		NodeID: "node2", Voters: 3, Waited: 10 * time.Second,
		Last: errors.New("dial tcp 10.0.0.7:7001: connection refused"),
	})
	p := problemFor(err)
	if p.Type != probServerInternal {
		t.Errorf("type = %s, want serverInternal", p.Type)
	}
	if p.Status != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", p.Status)
	}
	if p.retryAfter != 5 {
		t.Errorf("Retry-After = %d, want 5", p.retryAfter)
	}
	if !strings.Contains(p.Detail, "no cluster leader") {
		t.Errorf("detail %q does not name the missing leader", p.Detail)
	}
	for _, internal := range []string{"10.0.0.7", "connection refused", "node2"} {
		if strings.Contains(p.Detail, internal) {
			t.Errorf("detail %q contains the internal %q", p.Detail, internal)
		}
	}
}
