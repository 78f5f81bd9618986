package fsm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// acmeState is an FSM with one chain, one EAB key and one ACME account.
type acmeState struct {
	t     *testing.T
	fsm   *FSM
	index uint64
	chain string
}

func newACMEState(t *testing.T) *acmeState {
	t.Helper()
	f, err := Open(filepath.Join(t.TempDir(), "state.db"),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	s := &acmeState{t: t, fsm: f, chain: ChainID("o", "r", "c")}
	s.must(CmdCreateOrganization, CreateOrganization{Name: "o"})
	s.must(CmdCreateRealm, CreateRealm{Org: "o", Name: "r"})
	s.must(CmdCreateChain, CreateChain{Org: "o", Realm: "r", Name: "c",
		Root:  CA{Name: "root", CertDER: testCert(t, true)},
		SubCA: CA{Name: "sub", CertDER: testCert(t, true)},
	})
	s.must(CmdCreateEAB, EABKey{KeyID: "eab", HMACKey: make([]byte, 32), ChainID: s.chain})
	s.must(CmdACMECreateAccount, CreateACMEAccount{Account: ACMEAccount{
		ID: "acct", ChainID: s.chain, Thumbprint: "tp", JWK: json.RawMessage(`{}`),
		EABKeyID: "eab",
	}})
	return s
}

func (s *acmeState) apply(typ CommandType, payload any) error {
	s.t.Helper()
	return s.applyAt(typ, payload, time.Now())
}

// applyAt applies a command whose proposer clock read at.
func (s *acmeState) applyAt(typ CommandType, payload any, at time.Time) error {
	s.t.Helper()
	cmd := MustCommand(typ, payload)
	cmd.Time = at.UTC().Truncate(time.Second)
	return s.applyCommand(cmd)
}

// applyCommand applies cmd as the next log entry.
func (s *acmeState) applyCommand(cmd *Command) error {
	s.t.Helper()
	return applyEntry(s.t, s.fsm, &s.index, cmd)
}

// applyEntry applies cmd to f as the log entry after *index, and returns
// the handler's error.
func applyEntry(t testing.TB, f *FSM, index *uint64, cmd *Command) error {
	t.Helper()
	data, err := cmd.Encode()
	if err != nil {
		t.Fatal(err)
	}
	*index++
	res := f.Apply(&raft.Log{Index: *index, Type: raft.LogCommand, Data: data}).(*Result)
	if res.Err != nil {
		return res.Err
	}
	return nil
}

func (s *acmeState) must(typ CommandType, payload any) {
	s.t.Helper()
	if err := s.apply(typ, payload); err != nil {
		s.t.Fatalf("apply %s: %v", typ, err)
	}
}

func (s *acmeState) order(id string) *ACMEOrder {
	s.t.Helper()
	var o *ACMEOrder
	if err := s.fsm.View(func(tx *Tx) error {
		var err error
		o, err = tx.ACMEOrder(id)
		return err
	}); err != nil {
		s.t.Fatal(err)
	}
	return o
}

// createOrder stores an order for one name whose authorization has the
// given status.
func (s *acmeState) createOrder(id, authzStatus string) {
	s.t.Helper()
	a := ACMEAuthorization{
		ID: id + "-authz", AccountID: "acct", OrderID: id, Status: authzStatus,
		Identifier: ACMEIdentifier{Type: ACMEIdentifierDNS, Value: id + ".test"},
		Expires:    time.Now().Add(time.Hour),
	}
	if authzStatus == ACMEStatusPending {
		a.Challenges = []ACMEChallenge{{ID: id + "-ch", Type: "http-01", Token: "tok"}}
	}
	s.must(CmdACMECreateOrder, CreateACMEOrder{
		Order: ACMEOrder{
			ID: id, AccountID: "acct", ChainID: s.chain, Expires: time.Now().Add(time.Hour),
			Identifiers: []ACMEIdentifier{a.Identifier},
		},
		Authorizations: []ACMEAuthorization{a},
	})
}

func testCert(t *testing.T, isCA bool) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: isCA, BasicConstraintsValid: true, DNSNames: []string{"a.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func (s *acmeState) issue(orderID string) error {
	return s.apply(CmdIssueCredential, IssueCredential{
		ChainID: s.chain, CAID: s.chain + "/sub", Names: []string{"a.test"},
		DER: testCert(s.t, false), OrderID: orderID,
	})
}

func TestCompleteOrder_RequiresProcessing(t *testing.T) {
	s := newACMEState(t)
	s.createOrder("o1", ACMEStatusValid)
	if got := s.order("o1").Status; got != ACMEStatusReady {
		t.Fatalf("order status = %s, want ready", got)
	}
	if err := s.issue("o1"); CodeOf(err) != CodeFailedPrecondition {
		t.Errorf("credential for a ready order: %v, want failed precondition", err)
	}
	s.must(CmdACMEProcessOrder, ACMEOrderTransition{ID: "o1"})
	if err := s.issue("o1"); err != nil {
		t.Fatalf("credential for a processing order: %v", err)
	}
	o := s.order("o1")
	if o.Status != ACMEStatusValid || o.Serial == "" {
		t.Errorf("order = %s with serial %q, want valid with a serial", o.Status, o.Serial)
	}
	if err := s.issue("o1"); CodeOf(err) != CodeFailedPrecondition {
		t.Errorf("second credential for the order: %v, want failed precondition", err)
	}
}

func TestCompleteOrder_UnknownOrder(t *testing.T) {
	s := newACMEState(t)
	if err := s.issue("missing"); CodeOf(err) != CodeNotFound {
		t.Errorf("credential for an unknown order: %v, want not found", err)
	}
}

func TestProcessOrder_OnlyOnce(t *testing.T) {
	s := newACMEState(t)
	s.createOrder("o1", ACMEStatusValid)
	s.must(CmdACMEProcessOrder, ACMEOrderTransition{ID: "o1"})
	if err := s.apply(CmdACMEProcessOrder, ACMEOrderTransition{ID: "o1"}); CodeOf(err) !=
		CodeFailedPrecondition {
		t.Errorf("second processing: %v, want failed precondition", err)
	}
}

func TestChallengeUpdate_Transitions(t *testing.T) {
	s := newACMEState(t)
	s.createOrder("o1", ACMEStatusPending)
	if got := s.order("o1").Status; got != ACMEStatusPending {
		t.Fatalf("order status = %s, want pending", got)
	}
	valid := UpdateACMEChallenge{ID: "o1-ch", Status: ACMEStatusValid}
	if err := s.apply(CmdACMEUpdateChallenge, valid); CodeOf(err) != CodeFailedPrecondition {
		t.Errorf("pending -> valid: %v, want failed precondition", err)
	}
	s.must(CmdACMEUpdateChallenge, UpdateACMEChallenge{ID: "o1-ch", Status: ACMEStatusProcessing})
	s.must(CmdACMEUpdateChallenge, valid)
	if got := s.order("o1").Status; got != ACMEStatusReady {
		t.Errorf("order status after valid challenge = %s, want ready", got)
	}
	invalid := UpdateACMEChallenge{ID: "o1-ch", Status: ACMEStatusInvalid}
	if err := s.apply(CmdACMEUpdateChallenge, invalid); CodeOf(err) != CodeFailedPrecondition {
		t.Errorf("valid -> invalid: %v, want failed precondition", err)
	}
}

func TestChallengeUpdate_InvalidFailsOrder(t *testing.T) {
	s := newACMEState(t)
	s.createOrder("o1", ACMEStatusPending)
	s.must(CmdACMEUpdateChallenge, UpdateACMEChallenge{ID: "o1-ch", Status: ACMEStatusProcessing})
	s.must(CmdACMEUpdateChallenge, UpdateACMEChallenge{ID: "o1-ch", Status: ACMEStatusInvalid,
		Error: &ACMEProblem{Type: "urn:ietf:params:acme:error:connection", Detail: "refused"}})
	if got := s.order("o1").Status; got != ACMEStatusInvalid {
		t.Errorf("order status = %s, want invalid", got)
	}
}

func TestCreateAccount_KeyAndEABOnce(t *testing.T) {
	s := newACMEState(t)
	s.must(CmdCreateEAB, EABKey{KeyID: "eab2", HMACKey: make([]byte, 32), ChainID: s.chain})
	sameKey := CreateACMEAccount{Account: ACMEAccount{
		ID: "acct2", ChainID: s.chain, Thumbprint: "tp", JWK: json.RawMessage(`{}`),
		EABKeyID: "eab2",
	}}
	if err := s.apply(CmdACMECreateAccount, sameKey); CodeOf(err) != CodeAlreadyExists {
		t.Errorf("second account with the same key: %v, want already exists", err)
	}
	sameEAB := sameKey
	sameEAB.Account.Thumbprint, sameEAB.Account.EABKeyID = "tp2", "eab"
	if err := s.apply(CmdACMECreateAccount, sameEAB); CodeOf(err) != CodeFailedPrecondition {
		t.Errorf("second account with the same EAB key: %v, want failed precondition", err)
	}
	_ = s.fsm.View(func(tx *Tx) error {
		k, err := tx.EABKey("eab2")
		if err != nil || k.AccountID != "" {
			t.Errorf("eab2 bound to %q (%v) after rejected commands", k.AccountID, err)
		}
		return nil
	})
}

func TestRedeemNonce_OnceAndPruned(t *testing.T) {
	s := newACMEState(t)
	expires := time.Now().Add(time.Minute).Truncate(time.Second)
	n1 := RedeemACMENonce{Nonce: "n1", Expires: expires}
	s.must(CmdACMERedeemNonce, n1)
	if err := s.apply(CmdACMERedeemNonce, n1); CodeOf(err) != CodeAlreadyExists {
		t.Errorf("second redemption: %v, want already exists", err)
	}
	past := RedeemACMENonce{Nonce: "n2", Expires: time.Now().Add(-time.Minute)}
	if err := s.apply(CmdACMERedeemNonce, past); CodeOf(err) != CodeFailedPrecondition {
		t.Errorf("expired nonce: %v, want failed precondition", err)
	}

	later := time.Now().Add(2 * time.Minute)
	n3 := RedeemACMENonce{Nonce: "n3", Expires: later.Add(time.Minute)}
	if err := s.applyAt(CmdACMERedeemNonce, n3, later); err != nil {
		t.Fatalf("redeem after n1 expired: %v", err)
	}
	_ = s.fsm.View(func(tx *Tx) error {
		if tx.ACMENonceRedeemed("n1", expires) {
			t.Errorf("expired nonce n1 not pruned")
		}
		if !tx.ACMENonceRedeemed("n3", n3.Expires) {
			t.Errorf("nonce n3 not recorded")
		}
		return nil
	})
}
