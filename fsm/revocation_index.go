package fsm

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Buckets of the revocation index. Keys start with the issuing CA's ID.
const (
	// bucketRevocations maps "caID|oo|serial" to a revocationValue, where oo
	// is the serial's least significant octet in hex and serial is the
	// serial in hex, zero-padded to 40 digits so that keys sort by value.
	bucketRevocations = "revocations"
	// bucketRevocationChanges maps "caID|oo" and "caID" to the log index of
	// the latest revocation in that octet group and in the whole CA.
	bucketRevocationChanges = "revocation_changes"
	// bucketRevocationCounts maps "caID" to the number of revocations.
	bucketRevocationCounts = "revocation_counts"
	// bucketRevocationsByIndex maps "caID|index|serial" to the same value
	// as bucketRevocations, where index is the revoking command's log index
	// as 8 big-endian octets, so delta CRLs read only recent revocations.
	bucketRevocationsByIndex = "revocations_by_index"
)

// serialKeyDigits is the padded width of a serial in index keys: 20 octets,
// the maximum length of RFC 5280, 4.1.2.2.
const serialKeyDigits = 40

// revocationValueLen is the size of an encoded index entry: revocation
// time, notAfter and log index as 8-octet big-endian integers, then the
// reason code.
const revocationValueLen = 25

// Revocation is one entry of the revocation index.
type Revocation struct {
	Serial    *big.Int
	RevokedAt time.Time // whole seconds
	// Reason is the CRLReason code (RFC 5280, 5.3.1).
	Reason   int
	NotAfter time.Time // whole seconds
	// Index is the log index of the command that revoked the certificate.
	// A delta CRL lists the revocations above its base CRL's SourceIndex.
	Index uint64
}

// ShardOf returns the CRL shard of serial among shards shards: its least
// significant octet modulo shards. For the power-of-two shard counts that
// ValidateCRLShards accepts, this equals serial mod shards.
func ShardOf(serial *big.Int, shards int) int {
	if shards <= 1 {
		return 0
	}
	return int(lowOctet(serial)) % shards
}

func lowOctet(serial *big.Int) byte {
	b := serial.Bytes()
	if len(b) == 0 {
		return 0
	}
	return b[len(b)-1]
}

// revocationKey returns the index key of a serial of caID.
func revocationKey(caID string, serial *big.Int) string {
	digits := serial.Text(16)
	if len(digits) < serialKeyDigits {
		digits = strings.Repeat("0", serialKeyDigits-len(digits)) + digits
	}
	return octetPrefix(caID, lowOctet(serial)) + digits
}

func octetPrefix(caID string, octet byte) string {
	return caID + "|" + hex.EncodeToString([]byte{octet}) + "|"
}

// indexRevokedCredential adds a revoked credential to the index. The
// credential.revoke handler calls it after marking the credential revoked.
//
// NOTE: a state database written by a build without this index lacks the
// revocations that build applied, so CRLs omit them. Nothing backfills the
// index yet.
func indexRevokedCredential(tx *Tx, cred *Credential) error {
	serial, ok := new(big.Int).SetString(cred.Serial, 16)
	if !ok {
		return Errorf(CodeInternal, "credential has invalid serial %q", cred.Serial)
	}
	return indexRevocation(tx, cred.CAID, &Revocation{
		Serial: serial, RevokedAt: cred.RevokedAt, Reason: cred.Reason, NotAfter: cred.NotAfter,
	})
}

// indexRevocation records r under the issuing CA caID, with the index of
// the command being applied, and marks the octet group and the CA changed.
func indexRevocation(tx *Tx, caID string, r *Revocation) error {
	value := make([]byte, revocationValueLen)
	binary.BigEndian.PutUint64(value[0:], uint64(r.RevokedAt.Unix()))
	binary.BigEndian.PutUint64(value[8:], uint64(r.NotAfter.Unix()))
	binary.BigEndian.PutUint64(value[16:], tx.Index())
	value[24] = byte(r.Reason)
	if err := tx.putRaw(bucketRevocations, revocationKey(caID, r.Serial), value); err != nil {
		return err
	}
	byIndex := indexPrefix(caID, tx.Index()) + "|" + r.Serial.Text(16)
	if err := tx.putRaw(bucketRevocationsByIndex, byIndex, value); err != nil {
		return err
	}

	index := uint64Bytes(tx.Index())
	group := strings.TrimSuffix(octetPrefix(caID, lowOctet(r.Serial)), "|")
	if err := tx.putRaw(bucketRevocationChanges, group, index); err != nil {
		return err
	}
	if err := tx.putRaw(bucketRevocationChanges, caID, index); err != nil {
		return err
	}
	count := tx.RevocationCount(caID) + 1
	return tx.putRaw(bucketRevocationCounts, caID, uint64Bytes(count))
}

// Revocations calls fn for every revocation of certificates that caID
// issued, ordered by octet group and then serial, until fn returns false.
func (t *Tx) Revocations(caID string, fn func(*Revocation) bool) error {
	return t.scanRevocations(caID+"|", fn)
}

// ShardRevocations calls fn for every revocation in one CRL shard of caID
// (see ShardOf) until fn returns false. shards must be a power of two of at
// most MaxCRLShards.
func (t *Tx) ShardRevocations(caID string, shard, shards int, fn func(*Revocation) bool) error {
	if err := ValidateCRLShards(shards); err != nil {
		return err
	}
	stopped := false
	for octet := shard; octet < 256; octet += shards {
		err := t.scanRevocations(octetPrefix(caID, byte(octet)), func(r *Revocation) bool {
			stopped = !fn(r)
			return !stopped
		})
		if err != nil || stopped {
			return err
		}
	}
	return nil
}

// RevocationsSince calls fn for the revocations of certificates that caID
// issued whose log index is above index, in log order, until fn returns
// false.
func (t *Tx) RevocationsSince(caID string, index uint64, fn func(*Revocation) bool) error {
	b := t.tx.Bucket([]byte(bucketRevocationsByIndex))
	if b == nil {
		return nil
	}
	prefix := []byte(caID + "|")
	c := b.Cursor()
	start := []byte(indexPrefix(caID, index+1))
	for k, v := c.Seek(start); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
		r, err := decodeRevocation(string(k), v)
		if err != nil {
			return err
		}
		if !fn(r) {
			return nil
		}
	}
	return nil
}

func indexPrefix(caID string, index uint64) string {
	return caID + "|" + string(uint64Bytes(index))
}

func (t *Tx) scanRevocations(prefix string, fn func(*Revocation) bool) error {
	var err error
	t.scan(bucketRevocations, prefix, func(key string, value []byte) bool {
		var r *Revocation
		if r, err = decodeRevocation(key, value); err != nil {
			return false
		}
		return fn(r)
	})
	return err
}

// decodeRevocation decodes an entry of either revocation bucket: both keys
// end with "|" and the serial in hex, which contains no "|".
func decodeRevocation(key string, value []byte) (*Revocation, error) {
	digits := key[strings.LastIndexByte(key, '|')+1:]
	serial, ok := new(big.Int).SetString(digits, 16)
	if !ok || len(value) != revocationValueLen {
		return nil, fmt.Errorf("decode %s/%s: corrupt revocation index entry", bucketRevocations, key)
	}
	return &Revocation{
		Serial:    serial,
		RevokedAt: time.Unix(int64(binary.BigEndian.Uint64(value[0:])), 0).UTC(),
		NotAfter:  time.Unix(int64(binary.BigEndian.Uint64(value[8:])), 0).UTC(),
		Index:     binary.BigEndian.Uint64(value[16:]),
		Reason:    int(value[24]),
	}, nil
}

// RevocationCount returns the number of revocations of certificates that
// caID issued.
func (t *Tx) RevocationCount(caID string) uint64 {
	return readUint64(t.getRaw(bucketRevocationCounts, caID))
}

// LastRevocationIndex returns the log index of the latest revocation in a
// CRL scope, or 0 when it has none: in the whole of caID for a full scope,
// otherwise in scope.Shard of shards.
func (t *Tx) LastRevocationIndex(scope CRLScope, shards int) uint64 {
	if !scope.Sharded {
		return readUint64(t.getRaw(bucketRevocationChanges, scope.CAID))
	}
	var latest uint64
	for octet := scope.Shard; octet < 256 && shards > 0; octet += shards {
		group := strings.TrimSuffix(octetPrefix(scope.CAID, byte(octet)), "|")
		latest = max(latest, readUint64(t.getRaw(bucketRevocationChanges, group)))
	}
	return latest
}

func readUint64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
