package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketMeta       = []byte("meta")
	keyLastApplied   = []byte("last_applied")
	errHandlerFailed = errors.New("handler failed")
)

// Handler applies one command's payload inside a write transaction. It must be
// deterministic. A handler that returns an error may have written to tx: the
// FSM rolls the transaction back and applies the command alone.
type Handler func(tx *Tx, cmd *Command) (any, error)

var handlers = map[CommandType]Handler{}

// register adds the handler for a command type. It is called from init
// functions, one file per entity.
func register(typ CommandType, h Handler) {
	if _, dup := handlers[typ]; dup {
		panic("fsm: duplicate handler for " + string(typ))
	}
	handlers[typ] = h
}

// FSM implements raft.FSM and raft.BatchingFSM over a bbolt database.
//
// Raft calls Apply, ApplyBatch, Snapshot and Restore from its FSM goroutine, one
// at a time. Readers call View from any goroutine.
type FSM struct {
	path     string
	logger   *slog.Logger
	lock     *os.File // holds path+".lock" while the FSM is open
	unsynced bool     // commits skip fsync; see durability.go
	stopSync chan struct{}
	syncDone chan struct{}

	// replayed is the highest log index Raft has passed to ApplyBatch or
	// Restore since the FSM opened. Below the stored applied index, Raft
	// is replaying entries the database already reflects (see Snapshot).
	replayed atomic.Uint64

	mu sync.RWMutex // guards db against replacement by Restore
	db *bolt.DB

	watchMu  sync.Mutex
	watchers []chan struct{}

	batches  atomic.Uint64 // write transactions committed by ApplyBatch
	commands atomic.Uint64 // log entries applied

	// snapshotIndex returns the log index of the newest snapshot in the
	// node's snapshot store, which is the one Restore is given.
	snapshotIndex func() uint64
}

// SetSnapshotIndexSource sets the function that returns the index of the
// snapshot the FSM restores. Raft's Restore does not pass it, and the restored
// database must record it as its applied index.
func (f *FSM) SetSnapshotIndexSource(fn func() uint64) { f.snapshotIndex = fn }

// ApplyStats counts the FSM's work since it was opened.
type ApplyStats struct {
	// Batches is the number of ApplyBatch calls, each one bbolt transaction
	// unless a command failed.
	Batches uint64
	// Entries is the number of log entries applied.
	Entries uint64
}

// Stats returns the FSM's apply counters.
func (f *FSM) Stats() ApplyStats {
	return ApplyStats{Batches: f.batches.Load(), Entries: f.commands.Load()}
}

// Open opens or creates the state database at path with the default
// Options.
func Open(path string, logger *slog.Logger) (*FSM, error) {
	return OpenWith(path, logger, Options{})
}

// OpenWith opens or creates the state database at path. A database that an
// earlier boot of the machine left unsynced is discarded first, so that it
// is rebuilt from the snapshot and the log (see durability.go).
func OpenWith(path string, logger *slog.Logger, opts Options) (*FSM, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create state directory %s: %w", filepath.Dir(path), err)
	}
	lock, err := lockDatabase(path, 2*time.Second)
	if err != nil {
		return nil, err
	}
	unsynced, err := prepareDatabase(path, opts, logger)
	if err != nil {
		lock.Close()
		return nil, err
	}
	db, err := openDB(path, unsynced)
	if err != nil {
		lock.Close()
		return nil, err
	}
	f := &FSM{path: path, logger: logger, lock: lock, unsynced: unsynced, db: db}
	if unsynced {
		f.startSyncLoop()
	} else {
		// An earlier unsynced run may have left writes in the page cache
		// only; one sync covers them before the marker goes.
		if err := db.Sync(); err != nil {
			f.closeFiles()
			return nil, fmt.Errorf("sync state database %s: %w", path, err)
		}
		if err := removeMarker(path); err != nil {
			f.closeFiles()
			return nil, err
		}
	}
	return f, nil
}

func openDB(path string, unsynced bool) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         2 * time.Second,
		InitialMmapSize: 256 << 20,
		FreelistType:    bolt.FreelistMapType,
		NoSync:          unsynced,
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open state database %s: %w: another anchor-node is using this data directory", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w; if it is damaged, move it aside and restart: "+
			"the node rebuilds it from its newest snapshot and the Raft log", path, err)
	}
	return db, nil
}

// Close syncs and closes the database. After an unsynced run it removes the
// marker only once the database is on disk, and it releases the lock last,
// so that no other process opens the database before the marker is gone.
func (f *FSM) Close() error {
	f.stopSyncLoop()
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	if f.unsynced {
		if err = f.db.Sync(); err != nil {
			f.distrust()
			err = fmt.Errorf("sync state database %s: %w", f.path, err)
		}
	}
	if cerr := f.db.Close(); err == nil {
		err = cerr
	}
	if err == nil && f.unsynced {
		err = removeMarker(f.path)
	}
	if cerr := f.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// closeFiles closes the database and releases the lock, leaving the marker.
func (f *FSM) closeFiles() error {
	err := f.db.Close()
	if cerr := f.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// LastApplied returns the index of the last log entry reflected in the state.
func (f *FSM) LastApplied() uint64 {
	var idx uint64
	_ = f.View(func(tx *Tx) error {
		idx = tx.lastApplied()
		return nil
	})
	return idx
}

// View runs fn in a read-only transaction on the local state.
func (f *FSM) View(fn func(tx *Tx) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.db.View(func(btx *bolt.Tx) error {
		return fn(&Tx{tx: btx})
	})
}

// Watch returns a channel that is closed after the next applied batch. Callers
// that wait for a condition re-check it and call Watch again.
func (f *FSM) Watch() <-chan struct{} {
	ch := make(chan struct{})
	f.watchMu.Lock()
	f.watchers = append(f.watchers, ch)
	f.watchMu.Unlock()
	return ch
}

func (f *FSM) notify() {
	f.watchMu.Lock()
	ws := f.watchers
	f.watchers = nil
	f.watchMu.Unlock()
	for _, ch := range ws {
		close(ch)
	}
}

// Apply applies a single log entry.
func (f *FSM) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in one bbolt transaction, so a batch
// costs one commit. When a command fails, the batch is applied again one entry
// per transaction so that the failed command leaves no partial writes.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	f.mu.RLock()
	defer f.mu.RUnlock()
	defer f.notify()
	f.batches.Add(1)
	f.commands.Add(uint64(len(logs)))
	if len(logs) > 0 {
		f.replayed.Store(logs[len(logs)-1].Index)
	}

	results := make([]any, len(logs))
	err := f.db.Update(func(btx *bolt.Tx) error {
		tx := &Tx{tx: btx}
		for i, l := range logs {
			res, ok := f.applyOne(tx, l)
			if !ok {
				return errHandlerFailed
			}
			results[i] = res
		}
		return nil
	})
	if err == nil {
		return results
	}
	if !errors.Is(err, errHandlerFailed) {
		f.writeFailed(err)
	}
	for i, l := range logs {
		var res *Result
		err := f.db.Update(func(btx *bolt.Tx) error {
			var ok bool
			res, ok = f.applyOne(&Tx{tx: btx}, l)
			if !ok {
				return errHandlerFailed
			}
			return nil
		})
		if errors.Is(err, errHandlerFailed) {
			// Record the index, and the failure for the audit trail, so that
			// the failed command is not retried on restart.
			err = f.db.Update(func(btx *bolt.Tx) error {
				tx := &Tx{tx: btx}
				if cmd, derr := DecodeCommand(l.Data); derr == nil {
					if aerr := appendAudit(tx, l.Index, cmd, res.Err); aerr != nil {
						return aerr
					}
				}
				return tx.setLastApplied(l.Index)
			})
		}
		if err != nil {
			f.writeFailed(err)
		}
		results[i] = res
	}
	return results
}

// writeFailed stops the node: a committed entry that cannot be applied
// must not be skipped, or this node's state would diverge. The entry stays
// in the Raft log and is applied after a restart.
func (f *FSM) writeFailed(err error) {
	panic(fmt.Sprintf("fsm: cannot write state database %s: %v; if the disk is full, free space "+
		"on its filesystem and restart the node", f.path, err))
}

// applyOne applies l inside tx. It returns ok=false when the handler failed and
// its writes must be rolled back.
func (f *FSM) applyOne(tx *Tx, l *raft.Log) (*Result, bool) {
	if l.Index <= tx.lastApplied() {
		// Already reflected in the on-disk state: a replay after restart.
		return nil, true
	}
	if err := tx.setLastApplied(l.Index); err != nil {
		panic(fmt.Sprintf("fsm: record applied index: %v", err))
	}
	if l.Type != raft.LogCommand {
		return nil, true
	}
	cmd, err := DecodeCommand(l.Data)
	if err != nil {
		var uv *UnknownVersionError
		if errors.As(err, &uv) {
			// Misapplying a newer command could diverge this node; stop instead.
			panic(fmt.Sprintf("fsm: log index %d: %v", l.Index, err))
		}
		f.logger.Error("undecodable log entry skipped", "index", l.Index, "error", err)
		return &Result{Err: Errorf(CodeInvalidArgument, "undecodable command")}, true
	}
	h, found := handlers[cmd.Type]
	if !found {
		panic(fmt.Sprintf("fsm: log index %d: unknown command type %q: upgrade this node", l.Index, cmd.Type))
	}
	tx.index = l.Index
	if cmd.RequestID != "" {
		rec, err := tx.appliedRequest(cmd.RequestID)
		if err != nil {
			panic(fmt.Sprintf("fsm: read request record: %v", err))
		}
		if rec != nil {
			f.logger.Debug("duplicate request returned its first result",
				"type", cmd.Type, "index", l.Index, "first_index", rec.Index)
			return rec.Result, true
		}
	}
	value, err := h(tx, cmd)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = Errorf(CodeInternal, "%s: %v", cmd.Type, err)
		}
		return &Result{Err: e}, false
	}
	if err := appendAudit(tx, l.Index, cmd, nil); err != nil {
		panic(fmt.Sprintf("fsm: record audit event: %v", err))
	}
	res := marshalResult(cmd.Type, value)
	if cmd.RequestID != "" {
		if err := tx.recordRequest(cmd, res); err != nil {
			panic(fmt.Sprintf("fsm: record request: %v", err))
		}
	}
	return res, true
}

// Snapshot captures the state for Raft. The returned snapshot streams the
// database from a read transaction, so writes continue meanwhile.
//
// After a restart Raft replays the log from its newest snapshot, and the
// FSM skips the entries the database already reflects. Raft labels a
// snapshot with the last index it passed in, so a snapshot taken during
// that replay would be labelled lower than its content, and a node
// restoring it would apply the difference twice. Snapshot declines until
// the replay has reached the database's applied index.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	btx, err := f.db.Begin(false)
	f.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("begin snapshot transaction: %w", err)
	}
	applied := (&Tx{tx: btx}).lastApplied()
	if replayed := f.replayed.Load(); replayed < applied {
		_ = btx.Rollback()
		return nil, fmt.Errorf("%w: the state database is at log index %d and Raft's replay at %d",
			raft.ErrNothingNewToSnapshot, applied, replayed)
	}
	return &snapshot{tx: btx}, nil
}

// Restore replaces the state with a snapshot. The new database is written
// beside the old one and renamed over it, so a crash leaves one or the other.
// Its applied index becomes the snapshot's index.
func (f *FSM) Restore(rc io.ReadCloser) error {
	var index uint64
	if f.snapshotIndex != nil {
		index = f.snapshotIndex()
	}
	return f.RestoreAt(rc, index)
}

// RestoreAt is Restore for a snapshot whose log index is known.
func (f *FSM) RestoreAt(rc io.ReadCloser, index uint64) error {
	defer rc.Close()
	tmp := f.path + ".restore"
	if err := writeSynced(tmp, rc); err != nil {
		return err
	}

	if err := setRestoredIndex(tmp, index); err != nil {
		return err
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.notify()
	f.replayed.Store(index)
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("close state database: %w", err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return fmt.Errorf("replace %s: %w", f.path, err)
	}
	db, err := openDB(f.path, f.unsynced)
	if err != nil {
		return err
	}
	f.db = db
	return nil
}

// setRestoredIndex sets the applied index of a restored database to the
// snapshot's index in this cluster's log. Raft replays every entry after
// that index, and the snapshot may come from a cluster with a longer log (a
// backup restored elsewhere), so the index stored inside it must not make
// the FSM skip those entries.
func setRestoredIndex(path string, index uint64) error {
	db, err := openDB(path, false)
	if err != nil {
		return err
	}
	err = db.Update(func(btx *bolt.Tx) error { return (&Tx{tx: btx}).setLastApplied(index) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reset applied index of %s: %w", path, err)
	}
	return nil
}

// Backup streams a consistent copy of the state database to w and returns
// the log index it reflects.
func (f *FSM) Backup(w io.Writer) (index uint64, size int64, err error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	err = f.db.View(func(btx *bolt.Tx) error {
		index = (&Tx{tx: btx}).lastApplied()
		size, err = btx.WriteTo(w)
		return err
	})
	return index, size, err
}

// Path returns the path of the state database.
func (f *FSM) Path() string { return f.path }

type snapshot struct {
	tx *bolt.Tx
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.tx.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("stream state database: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() { _ = s.tx.Rollback() }

func uint64Bytes(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
