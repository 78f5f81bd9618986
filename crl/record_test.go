package crl

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"anchor/fsm"
)

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func mustSigner(p *testPKI, ca *fsm.CA) crypto.Signer {
	p.t.Helper()
	s, err := caSigner(p, ca)
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

func (p *testPKI) ca(id string) *fsm.CA {
	p.t.Helper()
	var ca *fsm.CA
	if err := p.st.View(func(tx *fsm.Tx) error {
		var err error
		ca, err = tx.CA(id)
		return err
	}); err != nil {
		p.t.Fatal(err)
	}
	return ca
}

// completeCRL signs a complete full CRL of ca without entries, which states
// the first log entry.
func (p *testPKI) completeCRL(ca *fsm.CA, number uint64, signer crypto.Signer) *fsm.CRL {
	p.t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	crl, err := signCRL(&crlTemplate{
		ca: ca, scope: fsm.FullScope(ca.ID), number: number, sourceIndex: 1,
		thisUpdate: now, nextUpdate: now.Add(time.Hour),
	}, signer)
	if err != nil {
		p.t.Fatal(err)
	}
	return crl
}

func (p *testPKI) applyCRL(crl *fsm.CRL) *fsm.Result {
	p.t.Helper()
	res, err := p.Apply(context.Background(), fsm.MustCommand(fsm.CmdPublishCRL, crl))
	if err != nil {
		p.t.Fatal(err)
	}
	return res
}

func TestApplyPublishCRL_RejectsNumberNotGreater(t *testing.T) {
	p := newTestPKI(t)
	ca := p.ca(subID)
	for _, n := range []uint64{1, 2} {
		if res := p.applyCRL(p.completeCRL(ca, n, mustSigner(p, ca))); res.Err != nil {
			t.Fatalf("CRL %d rejected: %v", n, res.Err)
		}
	}
	for _, n := range []uint64{1, 2} {
		res := p.applyCRL(p.completeCRL(ca, n, mustSigner(p, ca)))
		if res.Err == nil || res.Err.Code != fsm.CodeFailedPrecondition {
			t.Errorf("CRL %d after 2: got %v, want failed_precondition", n, res.Err)
		}
	}
	if got := p.storedCRL(subID).Number; got != 2 {
		t.Errorf("stored number %d, want 2", got)
	}
}

func TestApplyPublishCRL_RejectsForeignSignature(t *testing.T) {
	p := newTestPKI(t)
	ca := p.ca(subID)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	res := p.applyCRL(p.completeCRL(ca, 1, key))
	if res.Err == nil || res.Err.Code != fsm.CodeInvalidArgument {
		t.Errorf("CRL signed by another key: got %v, want invalid_argument", res.Err)
	}
}

func TestApplyPublishCRL_RejectsMismatchedNumber(t *testing.T) {
	p := newTestPKI(t)
	ca := p.ca(subID)
	crl := p.completeCRL(ca, 5, mustSigner(p, ca))
	crl.Number = 6
	res := p.applyCRL(crl)
	if res.Err == nil || res.Err.Code != fsm.CodeInvalidArgument {
		t.Errorf("payload number differing from cRLNumber: got %v, want invalid_argument", res.Err)
	}
}

// deltaCRL signs a delta of the full scope of ca on base.
func (p *testPKI) deltaCRL(ca *fsm.CA, number uint64, base *fsm.CRLBase) *fsm.CRL {
	p.t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	crl, err := signCRL(&crlTemplate{
		ca: ca, scope: fsm.FullScope(ca.ID), base: base, number: number, sourceIndex: 1,
		thisUpdate: now, nextUpdate: now.Add(time.Hour),
	}, mustSigner(p, ca))
	if err != nil {
		p.t.Fatal(err)
	}
	return crl
}

func TestApplyPublishCRL_DeltaNeedsKnownBase(t *testing.T) {
	p := newTestPKI(t)
	ca := p.ca(subID)
	complete := p.completeCRL(ca, 1, mustSigner(p, ca))
	if res := p.applyCRL(complete); res.Err != nil {
		t.Fatalf("complete CRL rejected: %v", res.Err)
	}
	stranger := fsm.BaseOf(complete)
	stranger.SourceIndex = 0
	res := p.applyCRL(p.deltaCRL(ca, 2, stranger))
	if res.Err == nil || res.Err.Code != fsm.CodeFailedPrecondition {
		t.Errorf("delta on an unknown base: got %v, want failed_precondition", res.Err)
	}
	if res := p.applyCRL(p.deltaCRL(ca, 2, fsm.BaseOf(complete))); res.Err != nil {
		t.Errorf("delta on the current complete CRL rejected: %v", res.Err)
	}
	stored := p.storedScope(fsm.FullScope(subID), true)
	if stored == nil || stored.Number != 2 || len(stored.DER) == 0 {
		t.Errorf("stored delta CRL %+v, want number 2 with its DER", stored)
	}
}

func TestApplyPublishCRL_RejectsMissingDeltaIndicator(t *testing.T) {
	p := newTestPKI(t)
	ca := p.ca(subID)
	complete := p.completeCRL(ca, 1, mustSigner(p, ca))
	if res := p.applyCRL(complete); res.Err != nil {
		t.Fatalf("complete CRL rejected: %v", res.Err)
	}
	lying := p.completeCRL(ca, 2, mustSigner(p, ca))
	lying.Delta, lying.Base = true, fsm.BaseOf(complete)
	res := p.applyCRL(lying)
	if res.Err == nil || res.Err.Code != fsm.CodeInvalidArgument {
		t.Errorf("delta record of a CRL without deltaCRLIndicator: got %v, want invalid_argument",
			res.Err)
	}
}

func TestApplyPublishCRL_RejectsShardOutOfRange(t *testing.T) {
	p := newTestPKI(t)
	ca := p.ca(subID)
	now := time.Now().UTC().Truncate(time.Second)
	crl, err := signCRL(&crlTemplate{
		ca: ca, scope: fsm.ShardScope(subID, fsm.DefaultCRLShards), number: 1, sourceIndex: 1,
		thisUpdate: now, nextUpdate: now.Add(time.Hour),
	}, mustSigner(p, ca))
	if err != nil {
		t.Fatal(err)
	}
	res := p.applyCRL(crl)
	if res.Err == nil || res.Err.Code != fsm.CodeInvalidArgument {
		t.Errorf("shard %d of %d: got %v, want invalid_argument", fsm.DefaultCRLShards,
			fsm.DefaultCRLShards, res.Err)
	}
}
