package fsm

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func openTestFSM(t *testing.T) *FSM {
	t.Helper()
	f, err := Open(filepath.Join(t.TempDir(), "state.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func commandLog(t *testing.T, index uint64, cmd *Command) *raft.Log {
	t.Helper()
	data, err := cmd.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Type: raft.LogCommand, Data: data}
}

func TestDecodeCommand_NewerVersionNamed(t *testing.T) {
	data, err := json.Marshal(Command{Version: CommandVersion + 1, Type: CmdCreateOrganization})
	if err != nil {
		t.Fatal(err)
	}
	_, err = DecodeCommand(data)
	if err == nil {
		t.Fatal("decoded a command of a newer version")
	}
	want := fmt.Sprintf("version %d", CommandVersion+1)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("error %q does not name %q and the fix", err, want)
	}
}

func TestApply_NewerVersionStopsApplying(t *testing.T) {
	f := openTestFSM(t)
	cmd := MustCommand(CmdCreateOrganization, CreateOrganization{Name: "future"})
	cmd.Version = CommandVersion + 1
	l := commandLog(t, 1, cmd)
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("applying a newer command version did not stop the FSM")
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, fmt.Sprintf("version %d", CommandVersion+1)) {
			t.Fatalf("stop message %q does not name the version", msg)
		}
		if f.LastApplied() != 0 {
			t.Fatalf("applied index advanced to %d past the unknown command", f.LastApplied())
		}
	}()
	f.Apply(l)
}

func TestApplyBatch_FailedCommandLeavesNoWrites(t *testing.T) {
	f := openTestFSM(t)
	logs := []*raft.Log{
		commandLog(t, 1, MustCommand(CmdCreateOrganization, CreateOrganization{Name: "a"})),
		// Fails: the realm's organization does not exist.
		commandLog(t, 2, MustCommand(CmdCreateRealm, CreateRealm{Org: "missing", Name: "r"}).WithActor("admin:alice")),
		commandLog(t, 3, MustCommand(CmdCreateOrganization, CreateOrganization{Name: "b"})),
	}
	results := f.ApplyBatch(logs)
	if res := results[1].(*Result); res.Err == nil || res.Err.Code != CodeNotFound {
		t.Fatalf("second command result %+v, want not_found", res)
	}
	for _, i := range []int{0, 2} {
		if res := results[i].(*Result); res.Err != nil {
			t.Fatalf("command %d failed: %v", i+1, res.Err)
		}
	}
	if f.LastApplied() != 3 {
		t.Fatalf("applied index %d, want 3", f.LastApplied())
	}
	_ = f.View(func(tx *Tx) error {
		for _, name := range []string{"a", "b"} {
			if _, err := tx.Organization(name); err != nil {
				t.Errorf("organization %s: %v", name, err)
			}
		}
		if _, err := tx.Realm("missing", "r"); err == nil {
			t.Error("failed command left a realm")
		}
		events, err := tx.AuditEvents(0, "admin:alice", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 1 || events[0].Outcome != "error" || events[0].Index != 2 {
			t.Errorf("audit events %+v, want one error event at index 2", events)
		}
		return nil
	})
	// A replay after restart applies nothing twice.
	again := f.ApplyBatch(logs)
	for i, r := range again {
		if r != nil && r.(*Result) != nil {
			t.Errorf("replayed entry %d produced a result %+v", i+1, r)
		}
	}
}
