package fsm

import (
	"encoding/binary"
	"strings"
	"time"
)

// bucketCredentialExpiry orders issued credentials by notAfter: the key is
// notAfter in Unix seconds (8 octets, big-endian) followed by the serial in
// hex, zero-padded to 40 digits, and the value is "caID|serial".
const bucketCredentialExpiry = "credential_expiry"

// CredentialRef is an entry of the expiry index of issued credentials.
type CredentialRef struct {
	Serial   string // SerialKey form
	CAID     string
	NotAfter time.Time
	// Position is the entry's place in the index. CredentialsByExpiry
	// resumes after it.
	Position string
}

// indexIssuedCredential adds a new credential to the expiry index and pins
// its SubCA's CRL shard count. The credential.issue handler calls it.
func indexIssuedCredential(tx *Tx, cred *Credential) error {
	if err := pinCRLShards(tx, cred.CAID); err != nil {
		return err
	}
	return tx.putRaw(bucketCredentialExpiry, expiryKey(cred.NotAfter, cred.Serial),
		[]byte(cred.CAID+"|"+cred.Serial))
}

func expiryKey(notAfter time.Time, serial string) string {
	if len(serial) < serialKeyDigits {
		serial = strings.Repeat("0", serialKeyDigits-len(serial)) + serial
	}
	return ExpiryPosition(notAfter) + serial
}

// ExpiryPosition returns the index position just before the credentials
// whose notAfter is t or later.
func ExpiryPosition(t time.Time) string {
	unix := t.Unix()
	if unix < 0 {
		unix = 0
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(unix))
	return string(b[:])
}

// CredentialsByExpiry calls fn for the indexed credentials after position,
// in order of notAfter, until fn returns false. Credentials issued before
// the index existed are not listed.
func (t *Tx) CredentialsByExpiry(position string, fn func(*CredentialRef) bool) {
	b := t.tx.Bucket([]byte(bucketCredentialExpiry))
	if b == nil {
		return
	}
	c := b.Cursor()
	k, v := c.Seek([]byte(position))
	if k != nil && string(k) == position {
		k, v = c.Next()
	}
	for ; k != nil; k, v = c.Next() {
		caID, serial, ok := strings.Cut(string(v), "|")
		if !ok || len(k) < 8 {
			continue
		}
		ref := &CredentialRef{
			Serial:   serial,
			CAID:     caID,
			NotAfter: time.Unix(int64(binary.BigEndian.Uint64(k[:8])), 0).UTC(),
			Position: string(k),
		}
		if !fn(ref) {
			return
		}
	}
}
