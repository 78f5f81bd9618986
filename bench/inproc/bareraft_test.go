//go:build bench

package inproc

import (
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// countFSM is the trivial state machine of the bare cluster: it counts.
type countFSM struct{ applied atomic.Uint64 }

func (f *countFSM) Apply(*raft.Log) any { f.applied.Add(1); return nil }

// boltFSM is the bare cluster's durable state machine: it writes each
// batch of entries to a bbolt file in one transaction, with the fsyncs of
// a bbolt commit and the bbolt options of anchor's state.db, and nothing
// else.
type boltFSM struct {
	countFSM
	db *bolt.DB
}

// Raft looks for ApplyBatch at run time and would fall back to the
// embedded Apply without it.
var _ raft.BatchingFSM = (*boltFSM)(nil)

var boltFSMBucket = []byte("entries")

func (f *boltFSM) ApplyBatch(logs []*raft.Log) []any {
	err := f.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(boltFSMBucket)
		if err != nil {
			return err
		}
		for _, l := range logs {
			if err := b.Put(binary.BigEndian.AppendUint64(nil, l.Index), l.Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("bare state machine: %v", err))
	}
	f.applied.Add(uint64(len(logs)))
	return make([]any, len(logs))
}

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return countSnapshot{}, nil }

func (f *countFSM) Restore(rc io.ReadCloser) error { return rc.Close() }

type countSnapshot struct{}

func (countSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (countSnapshot) Release()                             {}

// bareCluster is three hashicorp/raft members in this process, each with
// a raft-boltdb/v2 store and the plain TCP transport on loopback.
type bareCluster struct {
	nodes []*raft.Raft
}

// newBareCluster starts three members with the Raft settings that package
// cluster uses: 500 ms heartbeat and election timeouts, a 250 ms leader
// lease, a 10 ms commit timeout, a snapshot every 8192 entries, batched
// applies and a pool of 8 connections per peer. With durable set, each member's state machine is a
// boltFSM, else a countFSM.
func newBareCluster(t *testing.T, durable bool) *bareCluster {
	t.Helper()
	const n = 3
	var transports []*raft.NetworkTransport
	var servers []raft.Server
	for i := range n {
		trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, 8, 10*time.Second, io.Discard)
		if err != nil {
			t.Fatalf("raft transport: %v", err)
		}
		transports = append(transports, trans)
		servers = append(servers, raft.Server{Suffrage: raft.Voter,
			ID: raft.ServerID(fmt.Sprintf("bare%d", i+1)), Address: trans.LocalAddr()})
	}
	c := &bareCluster{}
	for i := range n {
		dir := t.TempDir()
		store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
		if err != nil {
			t.Fatalf("raft store: %v", err)
		}
		snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 3, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		cfg := raft.DefaultConfig()
		cfg.LocalID = servers[i].ID
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = 500*time.Millisecond, 500*time.Millisecond
		cfg.LeaderLeaseTimeout = 250 * time.Millisecond
		cfg.CommitTimeout = 10 * time.Millisecond
		cfg.SnapshotThreshold = 8192
		cfg.BatchApplyCh = true
		cfg.Logger = hclog.NewNullLogger()
		err = raft.BootstrapCluster(cfg, store, store, snaps, transports[i],
			raft.Configuration{Servers: servers})
		if err != nil {
			t.Fatalf("bootstrap bare cluster: %v", err)
		}
		var machine raft.FSM = &countFSM{}
		if durable {
			// The options of anchor's state.db (fsm.openDB).
			db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, &bolt.Options{
				Timeout: 2 * time.Second, InitialMmapSize: 256 << 20, FreelistType: bolt.FreelistMapType,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			machine = &boltFSM{db: db}
		}
		r, err := raft.NewRaft(cfg, machine, store, store, snaps, transports[i])
		if err != nil {
			t.Fatalf("start bare raft: %v", err)
		}
		c.nodes = append(c.nodes, r)
		t.Cleanup(func() {
			_ = r.Shutdown().Error()
			_ = store.Close()
		})
	}
	return c
}

// leader waits up to ten seconds for a leader and returns it.
func (c *bareCluster) leader(t *testing.T) *raft.Raft {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range c.nodes {
			if r.State() == raft.Leader {
				return r
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("bare raft cluster elected no leader within 10s")
	return nil
}
