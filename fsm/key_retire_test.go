package fsm

import (
	"crypto/x509"
	"slices"
	"testing"
	"time"
)

// applyAtTime applies a command whose proposer clock read at.
func (s *pkiState) applyAtTime(typ CommandType, payload any, at time.Time) error {
	s.t.Helper()
	cmd := MustCommand(typ, payload)
	cmd.Time = at.UTC().Truncate(time.Second)
	return applyEntry(s.t, s.fsm, &s.index, cmd)
}

func TestRetireKey_OnlyUnusedOldResponderKeys(t *testing.T) {
	s := newPKIState(t)
	now := time.Now()
	key := newKey(t)
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// A SubCA whose key ID looks like a responder key's stands for any
	// responder key that something still signs with.
	s.must(CmdCreateSubCA, CreateSubCA{SubCA: CA{
		ChainID: s.chain, Name: "extra", KeyID: "ocsp-used",
		CertDER: s.sign(caCertTemplate("extra"), s.rootCert, &key.PublicKey, s.rootKey).Raw,
	}})
	for id, created := range map[string]time.Time{
		"sub-key": now.Add(-48 * time.Hour), "ocsp-used": now.Add(-48 * time.Hour),
		"ocsp-orphan": now.Add(-48 * time.Hour), "ocsp-young": now,
	} {
		if err := s.applyAtTime(CmdCreateKey, Key{ID: id, PublicKey: pub, Origin: "n1"}, created); err != nil {
			t.Fatal(err)
		}
	}
	s.must(CmdShareKey, KeyShare{KeyID: "ocsp-orphan", NodeID: "n2", WrappedKey: []byte{1}})

	err = s.applyAtTime(CmdRetireKey, RetireKey{KeyID: "sub-key"}, now)
	wantCode(t, err, CodeInvalidArgument, "not an OCSP responder key")
	err = s.applyAtTime(CmdRetireKey, RetireKey{KeyID: "ocsp-used"}, now)
	wantCode(t, err, CodeFailedPrecondition, "CA "+s.chain+"/extra signs with it")
	err = s.applyAtTime(CmdRetireKey, RetireKey{KeyID: "ocsp-young"}, now)
	wantCode(t, err, CodeFailedPrecondition, "less than 24h0m0s ago")
	s.view(func(tx *Tx) error {
		unused, err := tx.UnusedKeys()
		if err != nil {
			return err
		}
		var ids []string
		for _, k := range unused {
			ids = append(ids, k.ID)
		}
		if want := []string{"ocsp-orphan", "ocsp-young"}; !slices.Equal(ids, want) {
			t.Errorf("unused keys %v, want %v", ids, want)
		}
		return nil
	})

	if err := s.applyAtTime(CmdRetireKey, RetireKey{KeyID: "ocsp-orphan"}, now); err != nil {
		t.Fatal(err)
	}
	s.view(func(tx *Tx) error {
		if _, err := tx.Key("ocsp-orphan"); !IsNotFound(err) {
			t.Errorf("retired key still listed as a key: %v", err)
		}
		if _, err := tx.KeyShare("ocsp-orphan", "n2"); !IsNotFound(err) {
			t.Errorf("share of the retired key kept: %v", err)
		}
		retired, err := tx.RetiredKeys()
		if err != nil {
			return err
		}
		if len(retired) != 1 || retired[0].ID != "ocsp-orphan" || retired[0].RetiredAt.IsZero() {
			t.Errorf("retired keys %+v, want ocsp-orphan with its time", retired)
		}
		return nil
	})
	err = s.applyAtTime(CmdRetireKey, RetireKey{KeyID: "ocsp-orphan"}, now)
	wantCode(t, err, CodeAlreadyExists, "already retired")
	err = s.applyAtTime(CmdShareKey, KeyShare{KeyID: "ocsp-orphan", NodeID: "n2", WrappedKey: []byte{1}}, now)
	wantCode(t, err, CodeNotFound, "not found")
	err = s.applyAtTime(CmdCreateKey, Key{ID: "ocsp-orphan", PublicKey: pub, Origin: "n1"}, now)
	wantCode(t, err, CodeAlreadyExists, "already exists")
}
