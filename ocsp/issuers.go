package ocsp

import (
	"bytes"
	"crypto"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"sync/atomic"

	"anchor/fsm"
)

// certIDHashes are the CertID hash algorithms that x/crypto/ocsp.ParseRequest
// accepts, and so the ones the issuer index covers.
var certIDHashes = []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}

// issuerKey names an issuer the way a CertID does: the hash algorithm and
// the hash of the issuer's public key, zero-padded.
type issuerKey struct {
	hash    crypto.Hash
	keyHash [sha512.Size]byte
}

// newIssuerKey returns the key of a CertID's issuer key hash, and false when
// its length does not fit the hash algorithm.
func newIssuerKey(hash crypto.Hash, keyHash []byte) (issuerKey, bool) {
	k := issuerKey{hash: hash}
	if !hash.Available() || len(keyHash) != hash.Size() {
		return k, false
	}
	copy(k.keyHash[:], keyHash)
	return k, true
}

// issuer is a CA of the state with what the Responder needs to respond for
// it: the parsed certificate and the CertID name hash of each algorithm.
// Apart from the responders it keeps, it never changes once built. A cached
// response belongs to the issuer value that it was signed for, and a new
// index reuses the values of CAs whose records are unchanged.
type issuer struct {
	ca       *fsm.CA
	cert     *x509.Certificate
	nameHash map[crypto.Hash][]byte

	// responders are the CA's designated responders as read at some
	// generation of the state. The signing path reads them again when the
	// state has changed since (see responderList).
	responders atomic.Pointer[responderList]
}

// responderList is a CA's designated responders, newest first, as the state
// held them at generation gen.
type responderList struct {
	gen  uint64
	list []fsm.OCSPResponder
}

// issuerIndex maps CertID issuer hashes to the CAs of one state database.
// CA records are only ever added (see fsm.Tx.CACount), so an index stays
// correct until the CA count grows or the database is replaced by a
// restore. Apart from countChecked, it is never modified after
// buildIssuerIndex returns it.
type issuerIndex struct {
	stateID fsm.StateID
	caCount int
	byKey   map[issuerKey]*issuer
	byID    map[string]*issuer
	// subCAs maps a root's ID to its SubCAs' IDs by certificate serial
	// (fsm.SerialKey).
	subCAs map[string]map[string]string
	// countChecked is the latest generation at which the CA count was found
	// unchanged, so that lookups of foreign issuers count the CAs once per
	// generation at most.
	countChecked atomic.Uint64
}

// buildIssuerIndex reads every CA of the state, reusing the issuer values of
// prev (which may be nil) whose CA records are unchanged. A SHA-1 or SHA-256
// key hash names the CA that fsm.Tx.CAByKeyHash returns for it. A SHA-384 or
// SHA-512 key hash names the first CA in ID order with that key.
func buildIssuerIndex(tx *fsm.Tx, prev *issuerIndex) (*issuerIndex, error) {
	cas, err := tx.CAs()
	if err != nil {
		return nil, err
	}
	idx := &issuerIndex{
		stateID: tx.StateID(),
		caCount: len(cas),
		byKey:   make(map[issuerKey]*issuer, len(cas)*len(certIDHashes)),
		byID:    make(map[string]*issuer, len(cas)),
		subCAs:  make(map[string]map[string]string),
	}
	for i := range cas {
		var previous *issuer
		if prev != nil {
			previous = prev.byID[cas[i].ID]
		}
		if err := idx.add(tx, &cas[i], previous); err != nil {
			return nil, err
		}
	}
	for i := range cas {
		idx.addToParent(idx.byID[cas[i].ID])
	}
	return idx, nil
}

// add indexes ca under the hashes of its key, reusing previous, the
// issuer of the index before, when it was built from the same record. CAs
// arrive in ID order.
func (idx *issuerIndex) add(tx *fsm.Tx, ca *fsm.CA, previous *issuer) error {
	iss := previous
	if iss == nil || !sameCA(iss.ca, ca) {
		var err error
		if iss, err = newIssuer(ca); err != nil {
			return err
		}
	}
	idx.byID[ca.ID] = iss
	for _, hash := range certIDHashes {
		keyHash, err := issuerKeyHash(iss.cert, hash)
		if err != nil {
			return err
		}
		key, _ := newIssuerKey(hash, keyHash)
		switch hash {
		case crypto.SHA1, crypto.SHA256:
			owner, err := tx.CAByKeyHash(hex.EncodeToString(keyHash))
			if err != nil && !fsm.IsNotFound(err) {
				return err
			}
			if err == nil && owner.ID == ca.ID {
				idx.byKey[key] = iss
			}
		default:
			if _, exists := idx.byKey[key]; !exists {
				idx.byKey[key] = iss
			}
		}
	}
	return nil
}

// newIssuer parses a CA's certificate and hashes its name.
func newIssuer(ca *fsm.CA) (*issuer, error) {
	cert, err := ca.Certificate()
	if err != nil {
		return nil, err
	}
	iss := &issuer{ca: ca, cert: cert, nameHash: make(map[crypto.Hash][]byte, len(certIDHashes))}
	for _, hash := range certIDHashes {
		h := hash.New()
		h.Write(cert.RawSubject)
		iss.nameHash[hash] = h.Sum(nil)
	}
	return iss, nil
}

// sameCA reports whether two CA records agree in what the Responder uses.
func sameCA(a, b *fsm.CA) bool {
	return a.ID == b.ID && a.Kind == b.Kind && a.KeyID == b.KeyID &&
		a.IssuerID == b.IssuerID && bytes.Equal(a.CertDER, b.CertDER)
}

// addToParent records a SubCA under its root, where the first SubCA in ID
// order with a serial keeps it.
func (idx *issuerIndex) addToParent(iss *issuer) {
	parent, ok := idx.byID[iss.ca.IssuerID]
	if !ok || parent.ca.Kind != fsm.CAKindRoot {
		return
	}
	subs := idx.subCAs[parent.ca.ID]
	if subs == nil {
		subs = make(map[string]string)
		idx.subCAs[parent.ca.ID] = subs
	}
	serial := fsm.SerialKey(iss.cert.SerialNumber)
	if _, exists := subs[serial]; !exists {
		subs[serial] = iss.ca.ID
	}
}

// find returns the CA that a request's CertID names, or nil when no CA of
// the index has the issuer key hash. It returns errUnauthorized for a CA
// with the key but another name hash, and for a key hash whose length does
// not fit the hash algorithm.
func (idx *issuerIndex) find(req *request) (*issuer, error) {
	key, ok := newIssuerKey(req.HashAlgorithm, req.IssuerKeyHash)
	if !ok {
		return nil, errUnauthorized
	}
	iss := idx.byKey[key]
	if iss == nil {
		return nil, nil
	}
	if !bytes.Equal(iss.nameHash[req.HashAlgorithm], req.IssuerNameHash) {
		return nil, errUnauthorized
	}
	return iss, nil
}

// responderList returns the CA's designated responders as of generation
// gen, reading them from tx when the cached list is older. tx must be a
// transaction begun after gen was observed.
func (iss *issuer) responderList(tx *fsm.Tx, gen uint64) ([]fsm.OCSPResponder, error) {
	if cached := iss.responders.Load(); cached != nil && cached.gen >= gen {
		return cached.list, nil
	}
	list, err := tx.OCSPResponders(iss.ca.ID)
	if err != nil {
		return nil, err
	}
	iss.responders.Store(&responderList{gen: gen, list: list})
	return list, nil
}
