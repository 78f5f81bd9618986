package fsm

import (
	"bytes"
	"strconv"
	"time"
)

// Buckets of published CRLs, keyed by CRLScope.key. The DER is kept apart
// from the JSON record, so that the publisher's checks read no DER.
const (
	bucketCRLRecords = "crl_records"
	bucketCRLDER     = "crl_der"
)

// CmdPublishCRL stores a newly signed complete or delta CRL of one scope.
const CmdPublishCRL CommandType = "crl.publish"

// CRLScope names the certificates that a CRL covers: all that a CA issued,
// or one shard of a SubCA's certificates (see ShardOf).
type CRLScope struct {
	CAID string `json:"ca_id"`
	// Sharded is set for a shard CRL, which lists the revoked certificates
	// whose serial falls into Shard.
	Sharded bool `json:"sharded,omitempty"`
	Shard   int  `json:"shard,omitempty"`
}

// FullScope returns the scope of all certificates that caID issued.
func FullScope(caID string) CRLScope { return CRLScope{CAID: caID} }

// ShardScope returns the scope of one shard of caID's certificates.
func ShardScope(caID string, shard int) CRLScope {
	return CRLScope{CAID: caID, Sharded: true, Shard: shard}
}

// String returns the CA ID, followed by "/shard" for a shard.
func (s CRLScope) String() string {
	if !s.Sharded {
		return s.CAID
	}
	return s.CAID + "/" + strconv.Itoa(s.Shard)
}

func (s CRLScope) key(delta bool) string {
	if delta {
		return s.String() + "|delta"
	}
	return s.String() + "|complete"
}

// CRL is the latest complete or delta CRL of a scope. It is both the payload
// of CmdPublishCRL and the stored record, so every node serves the bytes the
// leader signed.
type CRL struct {
	CRLScope
	// Delta marks a delta CRL (RFC 5280, 5.2.4), which lists the
	// revocations since its Base.
	Delta bool     `json:"delta,omitempty"`
	Base  *CRLBase `json:"base,omitempty"`
	// Number is the cRLNumber (RFC 5280, 5.2.3). Complete and delta CRLs of
	// a scope share one sequence, and the handler rejects a number that is
	// not greater than both stored numbers of the scope.
	Number uint64 `json:"number"`
	// SourceIndex is the applied log index of the state that the CRL lists.
	SourceIndex uint64    `json:"source_index"`
	Entries     int       `json:"entries"`
	ThisUpdate  time.Time `json:"this_update"`
	NextUpdate  time.Time `json:"next_update"`
	DER         []byte    `json:"der,omitempty"`
}

// CRLBase is the complete CRL that a delta CRL updates: its deltaCRLIndicator
// carries Number, and it lists the revocations applied after SourceIndex.
type CRLBase struct {
	Number      uint64    `json:"number"`
	SourceIndex uint64    `json:"source_index"`
	ThisUpdate  time.Time `json:"this_update"`
	NextUpdate  time.Time `json:"next_update"`
}

// BaseOf returns the CRLBase that a complete CRL provides to deltas.
func BaseOf(complete *CRL) *CRLBase {
	return &CRLBase{
		Number: complete.Number, SourceIndex: complete.SourceIndex,
		ThisUpdate: complete.ThisUpdate, NextUpdate: complete.NextUpdate,
	}
}

func (b *CRLBase) equal(o *CRLBase) bool {
	return b.Number == o.Number && b.SourceIndex == o.SourceIndex &&
		b.ThisUpdate.Equal(o.ThisUpdate) && b.NextUpdate.Equal(o.NextUpdate)
}

func init() {
	register(CmdPublishCRL, applyPublishCRL)
}

func applyPublishCRL(tx *Tx, cmd *Command) (any, error) {
	var p CRL
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	ca, err := tx.CA(p.CAID)
	if err != nil {
		return nil, err
	}
	if err := checkScope(tx, ca, p.CRLScope); err != nil {
		return nil, err
	}
	if p.SourceIndex >= tx.Index() {
		return nil, Errorf(CodeInvalidArgument, "CRL of %s: source index %d is not before entry %d",
			p.CRLScope, p.SourceIndex, tx.Index())
	}
	if err := checkCRL(ca, &p); err != nil {
		return nil, err
	}
	if err := checkSequence(tx, &p); err != nil {
		return nil, err
	}
	der := p.DER
	p.DER = nil
	if err := tx.put(bucketCRLRecords, p.key(p.Delta), p); err != nil {
		return nil, err
	}
	return nil, tx.putRaw(bucketCRLDER, p.key(p.Delta), der)
}

func checkScope(tx *Tx, ca *CA, scope CRLScope) error {
	if !scope.Sharded {
		return nil
	}
	if ca.Kind != CAKindSub {
		return Errorf(CodeInvalidArgument, "CRL of %s: a root has no CRL shards", scope)
	}
	shards, err := tx.CRLShards(ca.ID)
	if err != nil {
		return err
	}
	if scope.Shard < 0 || scope.Shard >= shards {
		return Errorf(CodeInvalidArgument, "CRL of %s: CA %q has %d shards", scope, ca.ID, shards)
	}
	return nil
}

// checkSequence enforces the shared number sequence of a scope, a source
// index that does not go back, and a delta base that is the scope's current
// complete CRL or the stored delta's base.
func checkSequence(tx *Tx, p *CRL) error {
	complete, err := tx.crlRecord(p.CRLScope, false)
	if err != nil {
		return err
	}
	delta, err := tx.crlRecord(p.CRLScope, true)
	if err != nil {
		return err
	}
	for _, stored := range []*CRL{complete, delta} {
		if stored != nil && p.Number <= stored.Number {
			return Errorf(CodeFailedPrecondition,
				"CRL number %d of %s is not greater than the stored number %d",
				p.Number, p.CRLScope, stored.Number)
		}
	}
	same := complete
	if p.Delta {
		same = delta
	}
	if same != nil && p.SourceIndex < same.SourceIndex {
		return Errorf(CodeFailedPrecondition, "CRL of %s lists state %d, older than the stored %d",
			p.CRLScope, p.SourceIndex, same.SourceIndex)
	}
	if !p.Delta {
		return nil
	}
	switch {
	case complete != nil && p.Base.equal(BaseOf(complete)):
		return nil
	case delta != nil && delta.Base != nil && p.Base.equal(delta.Base):
		return nil
	}
	return Errorf(CodeFailedPrecondition,
		"delta CRL of %s: base %d is neither the current complete CRL nor the stored base",
		p.CRLScope, p.Base.Number)
}

// crlRecord returns the stored record without DER, or nil.
func (t *Tx) crlRecord(scope CRLScope, delta bool) (*CRL, error) {
	var c CRL
	ok, err := t.get(bucketCRLRecords, scope.key(delta), &c)
	if err != nil || !ok {
		return nil, err
	}
	return &c, nil
}

// CRLInfo returns the record of the latest complete or delta CRL of a
// scope, without its DER.
func (t *Tx) CRLInfo(scope CRLScope, delta bool) (*CRL, error) {
	c, err := t.crlRecord(scope, delta)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, Errorf(CodeNotFound, "no %s published for %s", crlKind(delta), scope)
	}
	return c, nil
}

// CRL returns the latest complete or delta CRL of a scope with its DER.
func (t *Tx) CRL(scope CRLScope, delta bool) (*CRL, error) {
	c, err := t.CRLInfo(scope, delta)
	if err != nil {
		return nil, err
	}
	c.DER = bytes.Clone(t.getRaw(bucketCRLDER, scope.key(delta)))
	return c, nil
}

// AppliedIndex returns the index of the last log entry that the state
// reflects. A CRL built in this transaction records it as SourceIndex.
func (t *Tx) AppliedIndex() uint64 { return t.lastApplied() }

func crlKind(delta bool) string {
	if delta {
		return "delta CRL"
	}
	return "complete CRL"
}
