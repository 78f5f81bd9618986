package fsm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Tx is a transaction on the state. Read methods work on any Tx; write
// methods are only for handlers, which run inside the FSM's write transaction.
type Tx struct {
	tx    *bolt.Tx
	index uint64 // log index of the command being applied, 0 in reads
}

// Index returns the Raft log index of the command being applied.
func (t *Tx) Index() uint64 { return t.index }

func (t *Tx) lastApplied() uint64 {
	b := t.tx.Bucket(bucketMeta)
	if b == nil {
		return 0
	}
	v := b.Get(keyLastApplied)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (t *Tx) setLastApplied(idx uint64) error {
	b, err := t.tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	return b.Put(keyLastApplied, uint64Bytes(idx))
}

// get decodes the JSON value at bucket/key into v. It reports whether the key
// exists.
func (t *Tx) get(bucket, key string, v any) (bool, error) {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return false, nil
	}
	data := b.Get([]byte(key))
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return true, nil
}

func (t *Tx) has(bucket, key string) bool {
	b := t.tx.Bucket([]byte(bucket))
	return b != nil && b.Get([]byte(key)) != nil
}

// appendBuckets are the buckets whose keys grow with log index or time, so
// that new keys go to the end. bbolt splits a full page in half by default,
// which leaves every page of such a bucket half empty, so these buckets fill
// pages to appendFillPercent before splitting.
var appendBuckets = map[string]bool{
	bucketAudit: true, bucketRequests: true, bucketRequestTimes: true,
}

const appendFillPercent = 0.9

// writeBucket returns the bucket for a write, created if missing.
func (t *Tx) writeBucket(bucket string) (*bolt.Bucket, error) {
	b, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	if appendBuckets[bucket] {
		b.FillPercent = appendFillPercent
	}
	return b, nil
}

func (t *Tx) put(bucket, key string, v any) error {
	b, err := t.writeBucket(bucket)
	if err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	return b.Put([]byte(key), data)
}

func (t *Tx) putRaw(bucket, key string, value []byte) error {
	b, err := t.writeBucket(bucket)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), value)
}

func (t *Tx) getRaw(bucket, key string) []byte {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.Get([]byte(key))
}

func (t *Tx) del(bucket, key string) error {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.Delete([]byte(key))
}

// scan calls fn for every key with the given prefix, in key order, until fn
// returns false.
func (t *Tx) scan(bucket, prefix string, fn func(key string, value []byte) bool) {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return
	}
	c := b.Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && hasPrefix(k, p); k, v = c.Next() {
		if !fn(string(k), v) {
			return
		}
	}
}

func hasPrefix(b, prefix []byte) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == string(prefix)
}

// list decodes every value with the given key prefix into a new slice element.
func list[T any](t *Tx, bucket, prefix string) ([]T, error) {
	var out []T
	var err error
	t.scan(bucket, prefix, func(key string, value []byte) bool {
		var v T
		if err = json.Unmarshal(value, &v); err != nil {
			err = fmt.Errorf("decode %s/%s: %w", bucket, key, err)
			return false
		}
		out = append(out, v)
		return true
	})
	return out, err
}

// decodePayload unmarshals a command payload, reporting failures as invalid
// arguments so the proposer sees what was wrong.
func decodePayload(cmd *Command, v any) error {
	if err := json.Unmarshal(cmd.Payload, v); err != nil {
		return Errorf(CodeInvalidArgument, "invalid %s payload: %v", cmd.Type, err)
	}
	return nil
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func (t *Tx) count(bucket string) int {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return 0
	}
	return b.Stats().KeyN
}
