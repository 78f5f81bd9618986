package acme

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"anchor/fsm"
)

func TestDirectory_Fields(t *testing.T) {
	e := newProtoEnv(t, Options{})
	resp, err := http.Get(e.root + "/directory")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	var dir directoryJSON
	decodeJSON(t, resp, &dir)
	if !dir.Meta.ExternalAccountRequired {
		t.Errorf("meta.externalAccountRequired = false")
	}
	if dir.NewAccount != e.root+"/new-account" {
		t.Errorf("newAccount = %q, want %q", dir.NewAccount, e.root+"/new-account")
	}
	if dir.RenewalInfo != e.root+"/renewal-info" {
		t.Errorf("renewalInfo = %q", dir.RenewalInfo)
	}
	if got := resp.Header.Get("Link"); got != "<"+e.root+`/directory>;rel="index"` {
		t.Errorf("Link = %q", got)
	}
	if resp.Header.Get("Replay-Nonce") == "" {
		t.Errorf("directory response has no Replay-Nonce")
	}
}

func TestDirectory_UnknownChain(t *testing.T) {
	e := newProtoEnv(t, Options{})
	resp, err := http.Get(e.http.URL + "/acme-org/prod/x509/missing/acme/directory")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	expectProblem(t, resp, http.StatusNotFound, probMalformed)
	if got := resp.Header.Get("Link"); got != "" {
		t.Errorf("Link = %q, want none: the chain has no directory", got)
	}
}

func TestServer_UnavailableUntilReady(t *testing.T) {
	var ready atomic.Bool
	e := newProtoEnv(t, Options{Ready: ready.Load})
	resp, err := http.Get(e.root + "/directory")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("directory before ready: no Retry-After")
	}
	expectProblem(t, resp, http.StatusServiceUnavailable, probServerInternal)
	resp.Body.Close()

	ready.Store(true)
	resp, err = http.Get(e.root + "/directory")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("directory when ready: status %d, want 200", resp.StatusCode)
	}
}

func TestDirectory_ExternalURL(t *testing.T) {
	e := newProtoEnv(t, Options{ExternalURL: "https://ca.example.test:8443/"})
	resp, err := http.Get(e.root + "/directory")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var dir directoryJSON
	decodeJSON(t, resp, &dir)
	want := "https://ca.example.test:8443/acme-org/prod/x509/web/acme/new-order"
	if dir.NewOrder != want {
		t.Errorf("newOrder = %q, want %q", dir.NewOrder, want)
	}
}

func TestNewNonce_HeadAndGet(t *testing.T) {
	e := newProtoEnv(t, Options{})
	head, err := http.Head(e.root + "/new-nonce")
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	get, err := http.Get(e.root + "/new-nonce")
	if err != nil {
		t.Fatal(err)
	}
	get.Body.Close()
	if head.StatusCode != http.StatusOK {
		t.Errorf("HEAD status = %d, want 200", head.StatusCode)
	}
	if get.StatusCode != http.StatusNoContent {
		t.Errorf("GET status = %d, want 204", get.StatusCode)
	}
	n1, n2 := head.Header.Get("Replay-Nonce"), get.Header.Get("Replay-Nonce")
	if n1 == "" || n2 == "" || n1 == n2 {
		t.Errorf("nonces %q and %q must be present and differ", n1, n2)
	}
	if head.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", head.Header.Get("Cache-Control"))
	}
}

func TestNewAccount_CreatesWithEAB(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	resp := c.post(c.url("new-account"), map[string]any{
		"contact":                []string{"mailto:ops@example.test"},
		"externalAccountBinding": c.eabBinding(e.eab.KeyID, e.eab.HMACKey),
	})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	loc := resp.Header.Get("Location")
	id, ok := strings.CutPrefix(loc, e.root+"/account/")
	if !ok {
		t.Fatalf("Location = %q, not an account URL", loc)
	}
	var acct accountJSON
	decodeJSON(t, resp, &acct)
	if acct.Status != "valid" || acct.Orders != loc+"/orders" {
		t.Errorf("account = %+v", acct)
	}
	e.view(func(tx *fsm.Tx) error {
		k, err := tx.EABKey(e.eab.KeyID)
		if err != nil {
			return err
		}
		if k.AccountID != id {
			t.Errorf("EAB key bound to %q, want %q", k.AccountID, id)
		}
		a, err := tx.ACMEAccount(id)
		if err != nil {
			return err
		}
		if a.ChainID != e.chainID || len(a.Contact) != 1 {
			t.Errorf("stored account = %+v", a)
		}
		return nil
	})
}

func TestNewAccount_ExistingKeyReturnsAccount(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	kid := c.kid
	c.kid = ""
	resp := c.post(c.url("new-account"), map[string]any{"onlyReturnExisting": true})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	if loc := resp.Header.Get("Location"); loc != kid {
		t.Errorf("Location = %q, want %q", loc, kid)
	}
	// A second newAccount without EAB also returns the existing account.
	resp = c.post(c.url("new-account"), map[string]any{})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("repeated newAccount status = %d, want 200", resp.StatusCode)
	}
	if got := e.applier.count(fsm.CmdACMECreateAccount); got != 1 {
		t.Errorf("%d account commands applied, want 1", got)
	}
}

func TestNewAccount_OnlyReturnExistingUnknown(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	resp := c.post(c.url("new-account"), map[string]any{"onlyReturnExisting": true})
	expectProblem(t, resp, http.StatusBadRequest, probAccountDoesNotExist)
	if n := e.acmeWrites(); n != 0 {
		t.Errorf("%d ACME writes, want 0", n)
	}
}

func TestNewAccount_MissingEAB(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	resp := c.post(c.url("new-account"), map[string]any{"termsOfServiceAgreed": true})
	expectProblem(t, resp, http.StatusForbidden, probExternalAccountRequire)
	if n := e.acmeWrites(); n != 0 {
		t.Errorf("%d ACME writes, want 0", n)
	}
}

func TestNewAccount_BadEAB(t *testing.T) {
	e := newProtoEnv(t, Options{})
	other := newTestClient(t, e.root)
	wrongKey := make([]byte, 32)
	cases := []struct {
		name    string
		binding func(c *testClient) json.RawMessage
	}{
		{"WrongMAC", func(c *testClient) json.RawMessage {
			return c.eabBinding(e.eab.KeyID, wrongKey)
		}},
		{"UnknownKeyID", func(c *testClient) json.RawMessage {
			return c.eabBinding("no-such-key", e.eab.HMACKey)
		}},
		{"OtherAccountKey", func(c *testClient) json.RawMessage {
			return other.eabBinding(e.eab.KeyID, e.eab.HMACKey)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, e.root)
			resp := c.post(c.url("new-account"), map[string]any{
				"externalAccountBinding": tc.binding(c),
			})
			expectProblem(t, resp, http.StatusForbidden, probUnauthorized)
			if n := e.acmeWrites(); n != 0 {
				t.Errorf("%d ACME writes, want 0", n)
			}
			e.view(func(tx *fsm.Tx) error {
				k, err := tx.EABKey(e.eab.KeyID)
				if err == nil && k.AccountID != "" {
					t.Errorf("EAB key bound to %q", k.AccountID)
				}
				return err
			})
		})
	}
}

func TestNewAccount_EABKeyUsedTwice(t *testing.T) {
	e := newProtoEnv(t, Options{})
	first := newTestClient(t, e.root)
	first.register(e.eab)
	second := newTestClient(t, e.root)
	resp := second.post(second.url("new-account"), map[string]any{
		"externalAccountBinding": second.eabBinding(e.eab.KeyID, e.eab.HMACKey),
	})
	expectProblem(t, resp, http.StatusForbidden, probUnauthorized)
	if got := e.applier.count(fsm.CmdACMECreateAccount); got != 1 {
		t.Errorf("%d account commands applied, want 1", got)
	}
}

func TestNewAccount_EABBoundTwiceInLog(t *testing.T) {
	// Two proposals that passed the HTTP checks concurrently: the log
	// accepts the first binding only.
	e := newProtoEnv(t, Options{})
	for i, id := range []string{"acct-a", "acct-b"} {
		cmd := fsm.MustCommand(fsm.CmdACMECreateAccount, fsm.CreateACMEAccount{
			Account: fsm.ACMEAccount{
				ID: id, ChainID: e.chainID, Thumbprint: "thumb-" + id,
				JWK: json.RawMessage(`{}`), EABKeyID: e.eab.KeyID,
			},
		})
		res, err := e.applier.Apply(t.Context(), cmd)
		if err != nil {
			t.Fatal(err)
		}
		err = res.Decode(nil)
		if i == 0 && err != nil {
			t.Fatalf("first binding: %v", err)
		}
		if i == 1 && fsm.CodeOf(err) != fsm.CodeFailedPrecondition {
			t.Errorf("second binding error = %v, want failed precondition", err)
		}
	}
	e.view(func(tx *fsm.Tx) error {
		if _, err := tx.ACMEAccount("acct-b"); !fsm.IsNotFound(err) {
			t.Errorf("second account stored: %v", err)
		}
		return nil
	})
}

func TestNewAccount_UnsupportedContact(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	resp := c.post(c.url("new-account"), map[string]any{
		"contact":                []string{"tel:+1555"},
		"externalAccountBinding": c.eabBinding(e.eab.KeyID, e.eab.HMACKey),
	})
	expectProblem(t, resp, http.StatusBadRequest, probUnsupportedContact)
	if n := e.acmeWrites(); n != 0 {
		t.Errorf("%d ACME writes, want 0", n)
	}
}

func TestAccount_PostAsGetAndDeactivate(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	resp := c.post(c.kid, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST-as-GET status = %d", resp.StatusCode)
	}
	resp = c.post(c.kid, map[string]any{"status": "deactivated"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("deactivate status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	var acct accountJSON
	decodeJSON(t, resp, &acct)
	if acct.Status != "deactivated" {
		t.Errorf("status = %q, want deactivated", acct.Status)
	}
	resp = c.post(c.url("new-order"), map[string]any{
		"identifiers": []map[string]string{{"type": "dns", "value": "a.example.test"}},
	})
	expectProblem(t, resp, http.StatusForbidden, probUnauthorized)
}

func TestAccount_UpdateContact(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	resp := c.post(c.kid, map[string]any{"contact": []string{"mailto:new@example.test"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	var acct accountJSON
	decodeJSON(t, resp, &acct)
	if len(acct.Contact) != 1 || acct.Contact[0] != "mailto:new@example.test" {
		t.Errorf("contact = %v", acct.Contact)
	}
}

func TestAccount_OtherAccountRejected(t *testing.T) {
	e := newProtoEnv(t, Options{})
	a := newTestClient(t, e.root)
	a.register(e.eab)
	b := newTestClient(t, e.root)
	b.register(e.addEAB("eab-2", nil))
	resp := b.post(a.kid, nil)
	expectProblem(t, resp, http.StatusForbidden, probUnauthorized)
}
