package fsm

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// applyAs applies a command on behalf of actor and returns its handler
// error, if any.
func (s *pkiState) applyAs(actor string, typ CommandType, payload any) error {
	s.t.Helper()
	data, err := MustCommand(typ, payload).WithActor(actor).Encode()
	if err != nil {
		s.t.Fatal(err)
	}
	s.index++
	res := s.fsm.Apply(&raft.Log{Index: s.index, Type: raft.LogCommand, Data: data}).(*Result)
	if res.Err != nil {
		return res.Err
	}
	return nil
}

// lastAuditEvent returns the newest audit event of actor.
func (s *pkiState) lastAuditEvent(actor string) AuditEvent {
	s.t.Helper()
	var events []AuditEvent
	s.view(func(tx *Tx) error {
		var err error
		events, err = tx.AuditEvents(0, actor, 1000)
		return err
	})
	if len(events) == 0 {
		s.t.Fatalf("no audit event of %s", actor)
	}
	return events[len(events)-1]
}

func TestAuditTargets_CoverEveryCommandType(t *testing.T) {
	for typ := range handlers {
		if _, ok := auditTargets[typ]; !ok {
			t.Errorf("command type %s has no entry in auditTargets (map it to nil for no target)",
				typ)
		}
	}
}

func TestAuditEvent_Target(t *testing.T) {
	s := newPKIState(t)
	leafKey := newKey(t)
	leaf := s.leaf(big.NewInt(0x1234abcd), leafKey, "a.test")
	hmacKey := bytes.Repeat([]byte{0xab}, 32)

	cases := []struct {
		name    string
		typ     CommandType
		payload any
		want    string
	}{
		{"organization", CmdCreateOrganization, CreateOrganization{Name: "o2"}, "o2"},
		{"realm", CmdCreateRealm, CreateRealm{Org: "o", Name: "r2"}, "o/r2"},
		{"member", CmdAddMember, AddMember{Org: "o", Identity: "alice", Role: RoleViewer}, "o/alice"},
		{"EAB key", CmdCreateEAB,
			EABKey{KeyID: "kid-1", HMACKey: hmacKey, ChainID: s.chain}, "kid-1"},
		{"service", CmdCreateService, CreateService{
			Org: "o", Name: "svc", Identifiers: []string{"a.test"},
			Realms: []CreateServiceRealm{{Realm: "r", Chain: "c", EABKeyID: "kid-2", EABHMACKey: hmacKey}},
		}, "o/svc"},
		{"issue", CmdIssueCredential, IssueCredential{
			ChainID: s.chain, CAID: s.chain + "/sub", Names: []string{"a.test"}, DER: leaf.Raw,
		}, "1234abcd"},
		{"revoke", CmdRevoke, Revoke{Serial: "1234abcd", Reason: 1}, "1234abcd"},
		{"SubCA revocation", CmdRevokeSubCA, RevokeSubCA{CAID: s.chain + "/sub", Reason: 1},
			s.chain + "/sub"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.applyAs("admin:root", tc.typ, tc.payload); err != nil {
				t.Fatalf("apply %s: %v", tc.typ, err)
			}
			ev := s.lastAuditEvent("admin:root")
			if ev.Type != tc.typ {
				t.Fatalf("newest event is %s, want %s", ev.Type, tc.typ)
			}
			if ev.Target != tc.want {
				t.Errorf("target %q, want %q", ev.Target, tc.want)
			}
			stored, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{
				base64.StdEncoding.EncodeToString(hmacKey), base64.RawURLEncoding.EncodeToString(hmacKey),
			} {
				if strings.Contains(string(stored), secret) {
					t.Errorf("audit event %s contains the HMAC key", stored)
				}
			}
		})
	}
}

func TestAuditEvent_TargetOfFailedCommand(t *testing.T) {
	s := newPKIState(t)
	err := s.applyAs("admin:root", CmdRevoke, Revoke{Serial: "ffee", Reason: 1})
	wantCode(t, err, CodeNotFound, "ffee")
	ev := s.lastAuditEvent("admin:root")
	if ev.Outcome != "error" {
		t.Errorf("outcome %q, want error", ev.Outcome)
	}
	if ev.Target != "ffee" {
		t.Errorf("target %q, want the serial ffee", ev.Target)
	}
}

func TestAuditEvent_NoTargetForNonceKey(t *testing.T) {
	s := newPKIState(t)
	key := bytes.Repeat([]byte{0xcd}, 32)
	if err := s.applyAs("node:node1", CmdACMECreateNonceKey, ACMENonceKey{Key: key}); err != nil {
		t.Fatal(err)
	}
	if ev := s.lastAuditEvent("node:node1"); ev.Target != "" {
		t.Errorf("nonce key event has target %q, want none", ev.Target)
	}
}

func TestCertificateSerial_Malformed(t *testing.T) {
	cases := map[string][]byte{
		"empty":      nil,
		"not DER":    []byte("not a certificate"),
		"bare SEQ":   {0x30, 0x00},
		"truncated":  {0x30, 0x05, 0x30, 0x03, 0x02, 0x01},
		"no integer": {0x30, 0x04, 0x30, 0x02, 0x05, 0x00},
		"outer only": {0x30, 0x03, 0x02, 0x01, 0x05},
	}
	for name, der := range cases {
		if got := certificateSerial(der); got != "" {
			t.Errorf("%s: serial %q, want none", name, got)
		}
	}
}
