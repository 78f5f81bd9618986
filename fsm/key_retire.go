package fsm

import (
	"strings"
	"time"
)

// bucketRetiredKeys holds the records of keys that were retired: keys no CA
// and no OCSP responder signs with any more, which every node destroys in
// its HSM.
const bucketRetiredKeys = "retired_keys"

// CmdRetireKey retires a key that nothing signs with any more.
const CmdRetireKey CommandType = "key.retire"

// RetireMinAge is the minimum age of a key that is retired. A key is
// recorded before the CA or responder certificate that uses it, so a
// younger key without a user may still be on its way to one.
const RetireMinAge = 24 * time.Hour

// RetireKey is the payload of CmdRetireKey.
type RetireKey struct {
	KeyID string `json:"key_id"`
}

// RetiredKey is the record of a retired key.
type RetiredKey struct {
	Key
	RetiredAt time.Time `json:"retired_at"`
}

func init() { register(CmdRetireKey, applyRetireKey) }

// ResponderKeyPrefix begins the ID of every OCSP responder key. Only such
// keys are retired: a CA key may wait longer than RetireMinAge for the
// ceremony that creates its CA.
const ResponderKeyPrefix = "ocsp-"

// applyRetireKey moves a responder key's record to the retired keys and
// deletes its shares, after checking that no CA and no designated OCSP
// responder signs with it and that it is at least RetireMinAge old.
func applyRetireKey(tx *Tx, cmd *Command) (any, error) {
	var p RetireKey
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if tx.has(bucketRetiredKeys, p.KeyID) {
		return nil, Errorf(CodeAlreadyExists, "key %q is already retired", p.KeyID)
	}
	if !strings.HasPrefix(p.KeyID, ResponderKeyPrefix) {
		return nil, Errorf(CodeInvalidArgument, "key %q is not an OCSP responder key (%s...)",
			p.KeyID, ResponderKeyPrefix)
	}
	k, err := tx.Key(p.KeyID)
	if err != nil {
		return nil, err
	}
	used, err := usedKeys(tx)
	if err != nil {
		return nil, err
	}
	if user := used[k.ID]; user != "" {
		return nil, Errorf(CodeFailedPrecondition, "key %q cannot be retired: %s signs with it", k.ID, user)
	}
	if age := cmd.Time.Sub(k.CreatedAt); age < RetireMinAge {
		return nil, Errorf(CodeFailedPrecondition,
			"key %q was created at %s, less than %s ago, and may still be on its way to a certificate",
			k.ID, k.CreatedAt.Format(time.RFC3339), RetireMinAge)
	}
	var shares []string
	tx.scan(bucketKeyShares, k.ID+"|", func(key string, _ []byte) bool {
		shares = append(shares, key)
		return true
	})
	for _, key := range shares {
		if err := tx.del(bucketKeyShares, key); err != nil {
			return nil, err
		}
	}
	if err := tx.del(bucketKeys, k.ID); err != nil {
		return nil, err
	}
	r := RetiredKey{Key: *k, RetiredAt: cmd.Time}
	return r, tx.put(bucketRetiredKeys, k.ID, r)
}

// usedKeys maps the ID of every key that a CA or a designated OCSP
// responder signs with to a description of that user.
func usedKeys(tx *Tx) (map[string]string, error) {
	cas, err := tx.CAs()
	if err != nil {
		return nil, err
	}
	used := map[string]string{}
	for _, ca := range cas {
		if ca.KeyID != "" {
			used[ca.KeyID] = "CA " + ca.ID
		}
		responders, err := tx.OCSPResponders(ca.ID)
		if err != nil {
			return nil, err
		}
		for _, r := range responders {
			used[r.KeyID] = "the OCSP responder of CA " + ca.ID
		}
	}
	return used, nil
}

// RetiredKeys lists the retired keys.
func (t *Tx) RetiredKeys() ([]RetiredKey, error) {
	return list[RetiredKey](t, bucketRetiredKeys, "")
}

// UnusedKeys lists the keys that no CA and no OCSP responder signs with.
func (t *Tx) UnusedKeys() ([]Key, error) {
	keys, err := t.Keys()
	if err != nil {
		return nil, err
	}
	used, err := usedKeys(t)
	if err != nil {
		return nil, err
	}
	var out []Key
	for _, k := range keys {
		if used[k.ID] == "" {
			out = append(out, k)
		}
	}
	return out, nil
}
