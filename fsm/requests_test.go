package fsm

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func requestCommand(name, rid string, at time.Time) *Command {
	cmd := MustCommand(CmdCreateOrganization, CreateOrganization{Name: name}).WithActor("admin:alice")
	cmd.RequestID = rid
	cmd.Time = at
	return cmd
}

func auditCount(t *testing.T, f *FSM) int {
	t.Helper()
	var n int
	if err := f.View(func(tx *Tx) error {
		evs, err := tx.AuditEvents(0, "", 1000)
		n = len(evs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// A retried command reaches the log twice. The second copy returns the
// first copy's result and changes nothing.
func TestApply_RetriedRequestAppliedOnce(t *testing.T) {
	f := openTestFSM(t)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	cmd := requestCommand("retried", NewRequestID(), now)
	first := f.Apply(commandLog(t, 1, cmd)).(*Result)
	if first.Err != nil {
		t.Fatalf("first copy: %v", first.Err)
	}
	second := f.Apply(commandLog(t, 2, cmd)).(*Result)
	if second.Err != nil {
		t.Fatalf("second copy returned %v, want the first copy's result", second.Err)
	}
	if !bytes.Equal(first.Data, second.Data) {
		t.Fatalf("second copy returned %s, first returned %s", second.Data, first.Data)
	}
	if got := auditCount(t, f); got != 1 {
		t.Fatalf("%d audit events, want 1", got)
	}
	if f.LastApplied() != 2 {
		t.Fatalf("applied index %d, want 2", f.LastApplied())
	}

	// The same payload under another request ID is a new request.
	other := f.Apply(commandLog(t, 3, requestCommand("retried", NewRequestID(), now))).(*Result)
	if other.Err == nil || other.Err.Code != CodeAlreadyExists {
		t.Fatalf("new request for an existing organization: %+v, want already_exists", other)
	}
}

// Both copies in one batch share a transaction, and the second copy still
// finds the first copy's record.
func TestApplyBatch_RetriedRequestInOneBatch(t *testing.T) {
	f := openTestFSM(t)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	cmd := requestCommand("batched", NewRequestID(), now)
	results := f.ApplyBatch([]*raft.Log{commandLog(t, 1, cmd), commandLog(t, 2, cmd)})
	for i, r := range results {
		if res := r.(*Result); res.Err != nil {
			t.Fatalf("copy %d: %v", i+1, res.Err)
		}
	}
	if got := auditCount(t, f); got != 1 {
		t.Fatalf("%d audit events, want 1", got)
	}
}

// Records older than the window are pruned by later commands, in log order.
func TestApply_RequestRecordsPrunedAfterWindow(t *testing.T) {
	f := openTestFSM(t)
	start := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	old := requestCommand("old", NewRequestID(), start)
	if res := f.Apply(commandLog(t, 1, old)).(*Result); res.Err != nil {
		t.Fatal(res.Err)
	}
	// Still inside the window: kept.
	if res := f.Apply(commandLog(t, 2, requestCommand("inside", NewRequestID(), start.Add(RequestWindow)))).(*Result); res.Err != nil {
		t.Fatal(res.Err)
	}
	countRecords := func() int {
		var n int
		_ = f.View(func(tx *Tx) error { n = tx.RequestCount(); return nil })
		return n
	}
	if got := countRecords(); got != 2 {
		t.Fatalf("%d request records inside the window, want 2", got)
	}
	if res := f.Apply(commandLog(t, 3, requestCommand("later", NewRequestID(), start.Add(RequestWindow+time.Second)))).(*Result); res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := countRecords(); got != 2 {
		t.Fatalf("%d request records after the first expired, want 2", got)
	}
	// A copy of the expired request is applied as a new one.
	again := f.Apply(commandLog(t, 4, old)).(*Result)
	if again.Err == nil || again.Err.Code != CodeAlreadyExists {
		t.Fatalf("copy after the window: %+v, want already_exists", again)
	}
}

// A command without a request ID, as version-1 logs hold, is applied as
// before and leaves no record.
func TestApply_CommandWithoutRequestID(t *testing.T) {
	f := openTestFSM(t)
	cmd := MustCommand(CmdCreateOrganization, CreateOrganization{Name: "v1"})
	cmd.Version = 1
	if res := f.Apply(commandLog(t, 1, cmd)).(*Result); res.Err != nil {
		t.Fatal(res.Err)
	}
	again := f.Apply(commandLog(t, 2, cmd)).(*Result)
	if again.Err == nil || again.Err.Code != CodeAlreadyExists {
		t.Fatalf("second copy without request ID: %+v, want already_exists", again)
	}
	var n int
	_ = f.View(func(tx *Tx) error { n = tx.RequestCount(); return nil })
	if n != 0 {
		t.Fatalf("%d request records, want 0", n)
	}
}

func TestWithRequestID_KeepsOrAddsID(t *testing.T) {
	cmd := MustCommand(CmdCreateOrganization, CreateOrganization{Name: "id"})
	withID := cmd.WithRequestID()
	if withID.RequestID == "" {
		t.Fatal("command without a request ID got none")
	}
	if cmd.RequestID != "" {
		t.Errorf("the original command was changed to request ID %q", cmd.RequestID)
	}
	if again := withID.WithRequestID(); again.RequestID != withID.RequestID {
		t.Errorf("request ID %q replaced by %q", withID.RequestID, again.RequestID)
	}
}

func TestNewRequestID_OrderedAndUnique(t *testing.T) {
	seen := map[string]bool{}
	prev := NewRequestID()
	for range 1000 {
		id := NewRequestID()
		if len(id) != 32 {
			t.Fatalf("request ID %q has %d characters, want 32", id, len(id))
		}
		if seen[id] {
			t.Fatalf("request ID %q returned twice", id)
		}
		seen[id] = true
		// Equal clock readings leave the order to the random part.
		if id[:16] < prev[:16] {
			t.Fatalf("request ID %q sorts before the earlier %q", id, prev)
		}
		prev = id
	}
}

// Request records are appended at the end of their bucket, and the pages
// they fill must not be left half empty by bbolt's default split.
func TestApply_RequestRecordPagesFilled(t *testing.T) {
	f := openTestFSM(t)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for i := range 2000 {
		cmd := requestCommand(fmt.Sprintf("org-%d", i), NewRequestID(), now)
		if res := f.Apply(commandLog(t, uint64(i+1), cmd)).(*Result); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	err := f.View(func(tx *Tx) error {
		for _, name := range []string{bucketRequests, bucketAudit} {
			st := tx.tx.Bucket([]byte(name)).Stats()
			if st.LeafPageN < 10 {
				t.Fatalf("bucket %s has %d leaf pages, too few to measure", name, st.LeafPageN)
			}
			if fill := float64(st.LeafInuse) / float64(st.LeafAlloc); fill < 0.75 {
				t.Errorf("bucket %s: leaf pages %.0f%% full, want at least 75%%", name, 100*fill)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
