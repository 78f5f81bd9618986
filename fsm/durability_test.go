package fsm

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// setBoot makes Open see the given boot ID, or an unreadable one for "".
func setBoot(t *testing.T, id string) {
	t.Helper()
	orig := bootID
	t.Cleanup(func() { bootID = orig })
	bootID = func() (string, error) {
		if id == "" {
			return "", errors.New("no boot ID here")
		}
		return id, nil
	}
}

func openAt(t *testing.T, path string, opts Options) (*FSM, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	f, err := OpenWith(path, slog.New(slog.NewTextHandler(&logs, nil)), opts)
	if err != nil {
		t.Fatal(err)
	}
	return f, &logs
}

// crash leaves the FSM as a killed process does: the database and lock
// closed, nothing synced, the marker in place.
func crash(t *testing.T, f *FSM) {
	t.Helper()
	f.stopSyncLoop()
	if err := f.closeFiles(); err != nil {
		t.Fatal(err)
	}
}

func createOrgAt(t *testing.T, f *FSM, index uint64, name string) {
	t.Helper()
	res := f.Apply(commandLog(t, index, MustCommand(CmdCreateOrganization, CreateOrganization{Name: name})))
	if r := res.(*Result); r.Err != nil {
		t.Fatalf("create organization %s: %v", name, r.Err)
	}
}

func hasOrganization(f *FSM, name string) bool {
	return f.View(func(tx *Tx) error {
		_, err := tx.Organization(name)
		return err
	}) == nil
}

func markerExists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(markerPath(path))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func TestOpen_CrashOnSameBootKeepsState(t *testing.T) {
	setBoot(t, "boot-1")
	path := filepath.Join(t.TempDir(), "state.db")
	f, _ := openAt(t, path, Options{})
	if !f.db.NoSync {
		t.Fatal("state database syncs every batch by default")
	}
	createOrgAt(t, f, 1, "kept")
	crash(t, f)

	f, logs := openAt(t, path, Options{})
	defer f.Close()
	if got := f.LastApplied(); got != 1 {
		t.Errorf("applied index %d after a process crash, want 1", got)
	}
	if !hasOrganization(f, "kept") {
		t.Error("organization lost in a process crash")
	}
	if !strings.Contains(logs.String(), "not closed cleanly") {
		t.Errorf("log %q does not report the unclean stop", logs)
	}
}

func TestOpen_CrashOnEarlierBootDiscardsState(t *testing.T) {
	setBoot(t, "boot-1")
	path := filepath.Join(t.TempDir(), "state.db")
	f, _ := openAt(t, path, Options{})
	createOrgAt(t, f, 1, "lost")
	crash(t, f)

	setBoot(t, "boot-2")
	f, logs := openAt(t, path, Options{})
	defer f.Close()
	if got := f.LastApplied(); got != 0 {
		t.Errorf("applied index %d after a machine crash, want 0", got)
	}
	if hasOrganization(f, "lost") {
		t.Error("organization kept from a database that a machine crash may have torn")
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("log %q has no warning", logs)
	}
	if !strings.Contains(logs.String(), "rebuilds") {
		t.Errorf("log %q does not say that the database is rebuilt", logs)
	}
	if !markerExists(t, path) {
		t.Error("the new database runs unsynced without a marker")
	}
	if st, err := os.Stat(discardedPath(path)); err != nil || st.Size() == 0 {
		t.Errorf("discarded database not kept beside the new one: %v", err)
	}
}

func TestDistrust_NextStartRebuilds(t *testing.T) {
	setBoot(t, "boot-1")
	path := filepath.Join(t.TempDir(), "state.db")
	f, _ := openAt(t, path, Options{})
	createOrgAt(t, f, 1, "lost")
	f.distrust() // as after a failed fsync
	crash(t, f)

	f, _ = openAt(t, path, Options{})
	defer f.Close()
	if hasOrganization(f, "lost") {
		t.Fatal("database trusted on the same boot after a failed fsync")
	}
}

func TestSnapshot_DeclinedDuringReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	f, _ := openAt(t, path, Options{})
	var logs []*raft.Log
	for i, name := range []string{"a", "b", "c"} {
		logs = append(logs, commandLog(t, uint64(i+1),
			MustCommand(CmdCreateOrganization, CreateOrganization{Name: name})))
	}
	f.ApplyBatch(logs)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart Raft replays from its snapshot: here from index 1.
	f, _ = openAt(t, path, Options{})
	defer f.Close()
	f.ApplyBatch(logs[:1])
	if _, err := f.Snapshot(); !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		t.Fatalf("snapshot during the replay: error %v, want ErrNothingNewToSnapshot", err)
	}
	f.ApplyBatch(logs[1:])
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("snapshot after the replay: %v", err)
	}
	snap.Release()
}

func TestClose_SyncsAndRemovesMarker(t *testing.T) {
	setBoot(t, "boot-1")
	path := filepath.Join(t.TempDir(), "state.db")
	f, _ := openAt(t, path, Options{})
	if !markerExists(t, path) {
		t.Fatal("no marker while the database is written unsynced")
	}
	createOrgAt(t, f, 1, "kept")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if markerExists(t, path) {
		t.Fatal("marker left after a clean close")
	}

	// A clean close counts as synced on any later boot.
	setBoot(t, "boot-2")
	f, _ = openAt(t, path, Options{})
	defer f.Close()
	if !hasOrganization(f, "kept") {
		t.Fatal("a cleanly closed database was discarded after a restart")
	}
}

func TestOpen_SyncEachBatchAfterCrash(t *testing.T) {
	setBoot(t, "boot-1")
	path := filepath.Join(t.TempDir(), "state.db")
	f, _ := openAt(t, path, Options{})
	createOrgAt(t, f, 1, "kept")
	crash(t, f)

	f, _ = openAt(t, path, Options{SyncEachBatch: true})
	defer f.Close()
	if f.db.NoSync {
		t.Fatal("SyncEachBatch opened the database without fsync")
	}
	if markerExists(t, path) {
		t.Fatal("marker left although the database was synced on open")
	}
	if !hasOrganization(f, "kept") {
		t.Fatal("state lost when switching to SyncEachBatch")
	}
}

func TestOpen_UnreadableBootIDSyncsEachBatch(t *testing.T) {
	setBoot(t, "")
	path := filepath.Join(t.TempDir(), "state.db")
	f, logs := openAt(t, path, Options{})
	defer f.Close()
	if f.db.NoSync {
		t.Error("database written without fsync although a reboot cannot be detected")
	}
	if markerExists(t, path) {
		t.Error("marker written without a boot ID")
	}
	if !strings.Contains(logs.String(), "boot ID unreadable") {
		t.Errorf("log %q does not say why every batch is synced", logs)
	}
}

func TestOpen_SecondProcessRejected(t *testing.T) {
	setBoot(t, "boot-1")
	path := filepath.Join(t.TempDir(), "state.db")
	f, _ := openAt(t, path, Options{})
	defer f.Close()
	createOrgAt(t, f, 1, "kept")

	// A second opener must not touch the marker or the database of the
	// first, even after a reboot that would otherwise discard it.
	setBoot(t, "boot-2")
	_, err := OpenWith(path, slog.New(slog.DiscardHandler), Options{})
	if err == nil || !strings.Contains(err.Error(), "another anchor-node") {
		t.Fatalf("second open: %v, want an error naming the other process", err)
	}
	if !hasOrganization(f, "kept") {
		t.Fatal("rejected open changed the state")
	}
}
