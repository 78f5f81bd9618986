package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The state database contains nothing that the Raft log lacks. Every entry it
// reflects was fsynced to raft.db on a quorum before it was acknowledged, and
// compaction drops entries only after a snapshot contains them. So by default the
// FSM writes state.db without fsync. A bbolt commit writes its pages before
// its meta page, and a killed process leaves both in the page cache, so a
// crashed node finds state.db as it last committed it. Only an operating
// system crash or power loss can leave it torn. The FSM detects that with a
// marker file, state.db.unsynced, which it writes and syncs before the first
// unsynced commit and removes after syncing state.db on Close. The marker
// names the kernel's boot ID: a marker from an earlier boot means the
// database may have lost writes, and Open discards it so that the node
// rebuilds it from its newest snapshot and the Raft log.

// Options control how the FSM writes its database.
type Options struct {
	// SyncEachBatch fsyncs state.db on every applied batch, so that it
	// survives a power loss without a rebuild. It costs two fsyncs per
	// batch on every node. Without it, state.db is synced when the FSM
	// closes, and a node whose machine crashed rebuilds it.
	SyncEachBatch bool
}

// bootID returns the identifier of the running kernel boot. It is a variable
// so that tests can simulate a reboot.
var bootID = readBootID

func readBootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("/proc/sys/kernel/random/boot_id is empty")
	}
	return id, nil
}

func markerPath(dbPath string) string { return dbPath + ".unsynced" }

func discardedPath(dbPath string) string { return dbPath + ".discarded" }

// syncInterval is how often an unsynced FSM fsyncs state.db in the
// background. The kernel reports a failed write-back (an I/O error, a full
// thin-provisioned disk) only to a later fsync, so the interval bounds how
// long the node runs on a database that differs from its commits.
const syncInterval = time.Second

// startSyncLoop starts the background fsync of an unsynced database.
func (f *FSM) startSyncLoop() {
	stop, done := make(chan struct{}), make(chan struct{})
	f.stopSync, f.syncDone = stop, done
	go func() {
		defer close(done)
		t := time.NewTicker(syncInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			f.mu.RLock()
			err := f.db.Sync()
			f.mu.RUnlock()
			if err != nil {
				f.distrust()
				f.writeFailed(err)
			}
		}
	}()
}

// stopSyncLoop stops the background fsync and waits for it.
func (f *FSM) stopSyncLoop() {
	if f.stopSync == nil {
		return
	}
	close(f.stopSync)
	<-f.syncDone
	f.stopSync = nil
}

// distrust rewrites the marker so that it matches no boot, after a failed
// fsync: the kernel may have dropped pages of state.db, and the next start
// must rebuild it rather than trust it.
func (f *FSM) distrust() {
	if err := writeSynced(markerPath(f.path), strings.NewReader("sync-failed\n")); err != nil {
		f.logger.Error("marking the state database for a rebuild failed", "path", f.path, "error", err)
	}
}

// prepareDatabase decides, before bbolt opens path, whether the database can
// be trusted, and returns whether it is to be written without fsync. A
// database left unsynced by an earlier boot, or marked after a failed sync,
// is moved to state.db.discarded. The caller has taken the database's lock.
func prepareDatabase(path string, opts Options, logger *slog.Logger) (unsynced bool, err error) {
	boot, bootErr := bootID()
	marker, err := os.ReadFile(markerPath(path))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return false, fmt.Errorf("read %s: %w", markerPath(path), err)
	case bootErr == nil && string(bytes.TrimSpace(marker)) == boot:
		logger.Info("state database was not closed cleanly but is intact, because the machine "+
			"has not restarted since", "path", path)
	default:
		logger.Warn("discarding the state database: it was written without fsync and the machine "+
			"restarted before it was closed cleanly, or a sync failed, so it may have lost writes. "+
			"The node rebuilds it from the newest snapshot and the Raft log. The old file is kept "+
			"until the next discard and may be deleted", "path", path, "kept_as", discardedPath(path))
		if err := os.Rename(path, discardedPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("discard %s: %w", path, err)
		}
	}

	if opts.SyncEachBatch {
		return false, nil
	}
	if bootErr != nil {
		logger.Warn("boot ID unreadable, so the state database is synced on every batch",
			"error", bootErr)
		return false, nil
	}
	if err := writeSynced(markerPath(path), strings.NewReader(boot+"\n")); err != nil {
		return false, err
	}
	return true, nil
}

// removeMarker records that the database on disk is complete.
func removeMarker(path string) error {
	if err := os.Remove(markerPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", markerPath(path), err)
	}
	return syncDir(filepath.Dir(path))
}

// writeSynced writes what r returns to path and syncs the file and its
// directory.
func writeSynced(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// lockDatabase takes an exclusive lock on path+".lock", which guards the
// database and its marker against a second process on the same data
// directory. It waits up to timeout for a process that is stopping.
func lockDatabase(path string, timeout time.Duration) (*os.File, error) {
	lockPath := path + ".lock"
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", lockPath, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("lock %s: another anchor-node is using this data directory: "+
					"stop it or give this node another data directory", lockPath)
			}
			return nil, fmt.Errorf("lock %s: %w", lockPath, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
