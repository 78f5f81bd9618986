package fsm

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// A proposer that loses its leader in the middle of a write cannot tell
// whether the command committed, so it sends it again. Both copies may end
// up in the log. Each command therefore carries a request ID, the same on
// every attempt, and the state remembers the result of every request ID it
// applied within RequestWindow: a second copy returns the first copy's
// result and changes nothing.

// RequestWindow is the time, measured in command time, for which the result
// of a request is kept for its retries. It must exceed the cluster's apply
// timeout, during which a proposer retries, plus the clock difference
// between proposers.
const RequestWindow = 5 * time.Minute

// pruneBatch bounds the expired request records one command deletes, so
// that a burst of expiries is spread over later commands.
const pruneBatch = 64

const (
	bucketRequests     = "requests"
	bucketRequestTimes = "request-times"
)

// WithRequestID returns c when it has a request ID, else a copy of c with a
// new one. A proposer calls it once and sends the result on every attempt.
func (c *Command) WithRequestID() *Command {
	if c.RequestID != "" {
		return c
	}
	withID := *c
	withID.RequestID = NewRequestID()
	return &withID
}

// NewRequestID returns a new request ID for a command: the proposer's
// clock in nanoseconds, big-endian, then 8 random bytes, in hex. The state
// keeps request records by ID, so IDs that grow with time put new records
// at the end of the bucket and expired ones at its start. A batch of
// commands then writes a few pages there instead of one random page per
// record. The random part keeps IDs unique, and nothing relies on the time
// part being correct.
func NewRequestID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	_, _ = rand.Read(b[8:]) // crypto/rand.Read does not fail
	return hex.EncodeToString(b[:])
}

// requestRecord is the remembered outcome of one request.
type requestRecord struct {
	Index  uint64  `json:"index"`
	Unix   int64   `json:"unix"`
	Result *Result `json:"result"`
}

// requestTimeKey orders request records by command time, so that expired
// ones are found from the start of the bucket.
func requestTimeKey(unix int64, id string) []byte {
	key := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(key, uint64(unix))
	return append(key, id...)
}

// appliedRequest returns the result recorded for request ID id, if any.
func (t *Tx) appliedRequest(id string) (*requestRecord, error) {
	var rec requestRecord
	found, err := t.get(bucketRequests, id, &rec)
	if err != nil || !found {
		return nil, err
	}
	return &rec, nil
}

// recordRequest remembers res as the result of cmd, and deletes records
// that fell out of the window before cmd's time.
func (t *Tx) recordRequest(cmd *Command, res *Result) error {
	unix := cmd.Time.Unix()
	if err := t.put(bucketRequests, cmd.RequestID, requestRecord{Index: t.index, Unix: unix, Result: res}); err != nil {
		return err
	}
	if err := t.putRaw(bucketRequestTimes, string(requestTimeKey(unix, cmd.RequestID)), []byte{}); err != nil {
		return err
	}
	return t.pruneRequests(cmd.Time.Add(-RequestWindow))
}

// pruneRequests deletes up to pruneBatch records older than cutoff. Command
// times come from the log, so every node deletes the same records.
func (t *Tx) pruneRequests(cutoff time.Time) error {
	times := t.tx.Bucket([]byte(bucketRequestTimes))
	reqs := t.tx.Bucket([]byte(bucketRequests))
	if times == nil || reqs == nil {
		return nil
	}
	limit := requestTimeKey(cutoff.Unix(), "")
	var expired [][]byte
	c := times.Cursor()
	for k, _ := c.First(); k != nil && len(expired) < pruneBatch; k, _ = c.Next() {
		if bytes.Compare(k[:8], limit) >= 0 {
			break
		}
		expired = append(expired, append([]byte(nil), k...))
	}
	for _, k := range expired {
		if err := times.Delete(k); err != nil {
			return fmt.Errorf("delete expired request time %x: %w", k, err)
		}
		if err := reqs.Delete(k[8:]); err != nil {
			return fmt.Errorf("delete expired request %s: %w", k[8:], err)
		}
	}
	return nil
}

// RequestCount returns the number of request records in the state.
func (t *Tx) RequestCount() int {
	b := t.tx.Bucket([]byte(bucketRequests))
	if b == nil {
		return 0
	}
	return b.Stats().KeyN
}

// marshalResult encodes a handler's value as a Result.
func marshalResult(typ CommandType, value any) *Result {
	res := &Result{}
	if value != nil {
		data, err := json.Marshal(value)
		if err != nil {
			panic(fmt.Sprintf("fsm: encode %s result: %v", typ, err))
		}
		res.Data = data
	}
	return res
}
