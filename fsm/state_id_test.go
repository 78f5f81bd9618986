package fsm

import (
	"bytes"
	"io"
	"testing"
)

func stateIDOf(t *testing.T, f *FSM) StateID {
	t.Helper()
	var id StateID
	if err := f.View(func(tx *Tx) error { id = tx.StateID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestStateID_ChangesOnlyOnRestore(t *testing.T) {
	s := newPKIState(t)
	before := stateIDOf(t, s.fsm)
	s.must(CmdCreateOrganization, CreateOrganization{Name: "other"})
	if stateIDOf(t, s.fsm) != before {
		t.Error("StateID changed when a command was applied")
	}

	var backup bytes.Buffer
	if _, _, err := s.fsm.Backup(&backup); err != nil {
		t.Fatal(err)
	}
	if err := s.fsm.RestoreAt(io.NopCloser(&backup), s.index); err != nil {
		t.Fatal(err)
	}
	if stateIDOf(t, s.fsm) == before {
		t.Error("StateID is the same after a restore")
	}
}

func TestCACount_CountsRootAndSubCA(t *testing.T) {
	s := newPKIState(t)
	var n int
	if err := s.fsm.View(func(tx *Tx) error { n = tx.CACount(); return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("CACount = %d after one chain, want 2 (root and SubCA)", n)
	}
}
