package fsm

import bolt "go.etcd.io/bbolt"

// StateID identifies the state database that a transaction reads. Restore
// closes the database and opens the restored one, so a StateID taken after a
// restore differs from every StateID taken before it. Readers that keep data
// derived from the state, such as the OCSP responder's issuer index, compare
// StateIDs to find out that the state was replaced rather than changed by
// commands.
type StateID struct {
	// db is never dereferenced. Holding it keeps a closed database's
	// address from being reused by the next one.
	db *bolt.DB
}

// StateID returns the identity of the database that t reads.
func (t *Tx) StateID() StateID { return StateID{db: t.tx.DB()} }

// CACount returns the number of CA records. Commands only add CA records:
// chain.create and subca.create reject an existing ID, and nothing changes or
// deletes one. So within one StateID, a CA count that has not changed means
// that the CAs are the ones counted before.
func (t *Tx) CACount() int { return t.count(bucketCAs) }
