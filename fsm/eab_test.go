package fsm

import (
	"slices"
	"testing"
)

// TestCreateEAB_ChecksIdentifiersAgainstSubCA creates EAB keys directly
// through the state machine, as bootstrap does. An identifier that the
// chain's default SubCA may not sign is rejected and stores nothing;
// accepted identifiers are stored normalized.
func TestCreateEAB_ChecksIdentifiersAgainstSubCA(t *testing.T) {
	s := newACMEState(t)

	err := s.apply(CmdCreateEAB, EABKey{
		KeyID: "email", HMACKey: make([]byte, 32), ChainID: s.chain,
		Identifiers: []string{"admin@example.test"},
	})
	wantCode(t, err, CodeInvalidArgument, "breaks rule name_types of SubCA "+s.chain+"/sub")
	err = s.apply(CmdCreateEAB, EABKey{
		KeyID: "bad-prefix", HMACKey: make([]byte, 32), ChainID: s.chain,
		Identifiers: []string{"10.0.0.0/99"},
	})
	wantCode(t, err, CodeInvalidArgument, "invalid IP prefix")

	s.must(CmdCreateEAB, EABKey{
		KeyID: "ok", HMACKey: make([]byte, 32), ChainID: s.chain,
		Identifiers: []string{"*.Example.TEST", "10.1.2.3/8"},
	})
	s.view(func(tx *Tx) error {
		for _, id := range []string{"email", "bad-prefix"} {
			if _, err := tx.EABKey(id); err == nil {
				t.Errorf("rejected EAB key %q was stored", id)
			}
		}
		k, err := tx.EABKey("ok")
		if err != nil {
			return err
		}
		if want := []string{"*.example.test", "10.0.0.0/8"}; !slices.Equal(k.Identifiers, want) {
			t.Errorf("stored identifiers %v, want %v", k.Identifiers, want)
		}
		return nil
	})
}

// TestCreateEAB_Version2StoresIdentifiersUnchecked replays an eab.create of
// envelope version 2, written before the state machine checked
// identifiers. It must be stored as it was then, so that a node that
// replays it agrees with the nodes that applied it at the time.
func TestCreateEAB_Version2StoresIdentifiersUnchecked(t *testing.T) {
	s := newACMEState(t)
	cmd := MustCommand(CmdCreateEAB, EABKey{
		KeyID: "old", HMACKey: make([]byte, 32), ChainID: s.chain,
		Identifiers: []string{"admin@example.test"},
	})
	cmd.Version = 2
	if err := s.applyCommand(cmd); err != nil {
		t.Fatalf("version-2 eab.create: %v", err)
	}
	s.view(func(tx *Tx) error {
		k, err := tx.EABKey("old")
		if err != nil {
			return err
		}
		if want := []string{"admin@example.test"}; !slices.Equal(k.Identifiers, want) {
			t.Errorf("stored identifiers %v, want %v", k.Identifiers, want)
		}
		return nil
	})
}
