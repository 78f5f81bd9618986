package acme

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"sort"
	"strings"
	"testing"

	"anchor/fsm"
)

func dnsIDs(names ...string) map[string]any {
	var ids []map[string]string
	for _, n := range names {
		typ := "dns"
		if n != "" && (n[0] >= '0' && n[0] <= '9' || strings.Contains(n, ":")) {
			typ = "ip"
		}
		ids = append(ids, map[string]string{"type": typ, "value": n})
	}
	return map[string]any{"identifiers": ids}
}

// newOrder creates an order and returns it with its URL.
func (c *testClient) newOrder(names ...string) (orderJSON, string) {
	c.t.Helper()
	resp := c.post(c.url("new-order"), dnsIDs(names...))
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("new order: status %d: %s", resp.StatusCode, readBody(c.t, resp))
	}
	var o orderJSON
	decodeJSON(c.t, resp, &o)
	return o, resp.Header.Get("Location")
}

func (c *testClient) authz(url string) authzJSON {
	c.t.Helper()
	resp := c.post(url, nil)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("authz: status %d: %s", resp.StatusCode, readBody(c.t, resp))
	}
	var a authzJSON
	decodeJSON(c.t, resp, &a)
	return a
}

func (c *testClient) order(url string) orderJSON {
	c.t.Helper()
	resp := c.post(url, nil)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("order: status %d: %s", resp.StatusCode, readBody(c.t, resp))
	}
	var o orderJSON
	decodeJSON(c.t, resp, &o)
	return o
}

func TestNewOrder_PreAuthorizedReady(t *testing.T) {
	e := newProtoEnv(t, Options{}, "*.example.test")
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, loc := c.newOrder("A.Example.Test", "*.example.test")
	if o.Status != "ready" {
		t.Fatalf("order status = %q, want ready", o.Status)
	}
	if !strings.HasPrefix(loc, e.root+"/order/") {
		t.Errorf("Location = %q", loc)
	}
	if o.Identifiers[0].Value != "a.example.test" {
		t.Errorf("identifier = %q, want lower case", o.Identifiers[0].Value)
	}
	if o.Finalize != loc+"/finalize" {
		t.Errorf("finalize = %q", o.Finalize)
	}
	for _, u := range o.Authorizations {
		a := c.authz(u)
		if a.Status != "valid" || len(a.Challenges) != 0 {
			t.Errorf("authz %s = %+v, want valid without challenges", u, a)
		}
	}
}

func TestNewOrder_OutsideScopePending(t *testing.T) {
	e := newProtoEnv(t, Options{}, "*.example.test")
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, _ := c.newOrder("example.test", "*.other.test", "127.0.0.1")
	if o.Status != "pending" {
		t.Fatalf("order status = %q, want pending", o.Status)
	}
	want := map[string]string{
		"example.test": "dns-01,http-01,tls-alpn-01",
		"*.other.test": "dns-01",
		"127.0.0.1":    "http-01,tls-alpn-01",
	}
	for _, u := range o.Authorizations {
		a := c.authz(u)
		name := a.Identifier.Value
		if a.Wildcard {
			name = "*." + name
		}
		var types []string
		for _, ch := range a.Challenges {
			types = append(types, ch.Type)
			if ch.Status != "pending" || len(ch.Token) < 22 {
				t.Errorf("challenge %+v: want pending with a token", ch)
			}
		}
		sort.Strings(types)
		if got := strings.Join(types, ","); got != want[name] {
			t.Errorf("challenges of %s = %s, want %s", name, got, want[name])
		}
		if a.Status != "pending" {
			t.Errorf("authz of %s is %s, want pending", name, a.Status)
		}
	}
}

func TestNewOrder_RejectsIdentifiers(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	cases := []struct {
		name    string
		payload map[string]any
		typ     string
	}{
		{"Empty", map[string]any{"identifiers": []any{}}, probMalformed},
		{"BadCharacter", dnsIDs("bad_name.example.test"), probRejectedIdentifier},
		{"InnerWildcard", dnsIDs("a.*.example.test"), probRejectedIdentifier},
		{"BareWildcard", dnsIDs("*.test"), probRejectedIdentifier},
		{"TrailingDot", dnsIDs("example.test."), probRejectedIdentifier},
		{"IPAsDNS", map[string]any{"identifiers": []map[string]string{
			{"type": "dns", "value": "10.0.0.1"}}}, probRejectedIdentifier},
		{"BadIP", map[string]any{"identifiers": []map[string]string{
			{"type": "ip", "value": "10.0.0.300"}}}, probRejectedIdentifier},
		{"EmailType", map[string]any{"identifiers": []map[string]string{
			{"type": "email", "value": "a@example.test"}}}, probUnsupportedIdentifier},
		{"NotBefore", map[string]any{"notBefore": "2030-01-01T00:00:00Z",
			"identifiers": []map[string]string{{"type": "dns", "value": "a.test"}}},
			probMalformed},
		{"UnknownProfile", map[string]any{"profile": "tlsserver",
			"identifiers": []map[string]string{{"type": "dns", "value": "a.test"}}},
			probInvalidProfile},
		{"POSTAsGET", nil, probMalformed},
	}
	before := e.acmeWrites()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.post(c.url("new-order"), tc.payload)
			if tc.payload == nil {
				// post sends an empty payload for nil.
				resp = c.postRaw(c.url("new-order"), "application/jose+json",
					c.sign(c.url("new-order"), []byte{}, c.nonce()))
			}
			expectProblem(t, resp, http.StatusBadRequest, tc.typ)
			if n := e.acmeWrites(); n != before {
				t.Errorf("%d ACME writes, want %d", n, before)
			}
		})
	}
}

// TestNewOrder_RejectsOutsideSubCAPolicy makes a chain whose SubCA allows DNS
// names below allowed.example.test only, except blocked.allowed.example.test.
// Orders the SubCA would not sign are rejected before anything is stored.
func TestNewOrder_RejectsOutsideSubCAPolicy(t *testing.T) {
	e := newProtoEnv(t, Options{})
	permitted, excluded := "allowed.example.test", "blocked.allowed.example.test"
	cert := selfSignedCAWith(t, "narrow", func(c *x509.Certificate) {
		c.MaxPathLenZero = true
		c.PermittedDNSDomainsCritical = true
		c.PermittedDNSDomains = []string{permitted}
		c.ExcludedDNSDomains = []string{excluded}
	})
	e.mustApply(fsm.CmdCreateChain, fsm.CreateChain{
		Org: testOrg, Realm: testRealm, Name: "narrow",
		Root: fsm.CA{Name: "root", KeyID: "narrow-root-key", CertDER: selfSignedCA(t, "root")},
		SubCA: fsm.CA{Name: "sub", KeyID: "narrow-sub-key", CertDER: cert,
			Policy: fsm.Policy{NameTypes: []string{fsm.NameDNS}, NameConstraints: fsm.NameConstraints{
				PermittedDNS: []string{permitted}, ExcludedDNS: []string{excluded},
			}}},
	})
	chainID := fsm.ChainID(testOrg, testRealm, "narrow")
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	eab := fsm.EABKey{KeyID: "eab-narrow", HMACKey: key, ChainID: chainID}
	e.mustApply(fsm.CmdCreateEAB, eab)
	c := newTestClient(t, e.http.URL+"/"+testOrg+"/"+testRealm+"/x509/narrow/acme")
	c.register(eab)

	cases := []struct {
		name string
		ids  []map[string]string
	}{
		{"OutsidePermitted", []map[string]string{{"type": "dns", "value": "other.example.test"}}},
		{"Excluded", []map[string]string{{"type": "dns", "value": "a.blocked.allowed.example.test"}}},
		{"IPNotAllowed", []map[string]string{{"type": "ip", "value": "192.0.2.1"}}},
		{"OneOfTwo", []map[string]string{{"type": "dns", "value": "www.allowed.example.test"},
			{"type": "dns", "value": "other.example.test"}}},
	}
	before := e.acmeWrites()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.post(c.url("new-order"), map[string]any{"identifiers": tc.ids})
			p := expectProblem(t, resp, http.StatusBadRequest, probRejectedIdentifier)
			if !strings.Contains(p.Detail, chainID+"/sub") {
				t.Errorf("detail %q does not name the SubCA", p.Detail)
			}
			if n := e.acmeWrites(); n != before {
				t.Errorf("%d ACME writes, want %d", n, before)
			}
		})
	}

	resp := c.post(c.url("new-order"), map[string]any{"identifiers": []map[string]string{
		{"type": "dns", "value": "www.allowed.example.test"}}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("order inside the policy: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	resp.Body.Close()
}

func TestNewOrder_Profile(t *testing.T) {
	e := newProtoEnv(t, Options{Profiles: map[string]string{"tlsserver": "TLS server"}})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	resp := c.post(c.url("new-order"), map[string]any{"profile": "tlsserver",
		"identifiers": []map[string]string{{"type": "dns", "value": "a.example.test"}}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	var o orderJSON
	decodeJSON(t, resp, &o)
	if o.Profile != "tlsserver" {
		t.Errorf("profile = %q", o.Profile)
	}
}

func TestOrder_OtherAccountRejected(t *testing.T) {
	e := newProtoEnv(t, Options{})
	a := newTestClient(t, e.root)
	a.register(e.eab)
	_, loc := a.newOrder("a.example.test")
	b := newTestClient(t, e.root)
	b.register(e.addEAB("eab-2", nil))
	expectProblem(t, b.post(loc, nil), http.StatusForbidden, probUnauthorized)
}

func TestAccountOrders_Lists(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	_, loc1 := c.newOrder("a.example.test")
	_, loc2 := c.newOrder("b.example.test")
	resp := c.post(c.kid+"/orders", nil)
	var list struct {
		Orders []string `json:"orders"`
	}
	decodeJSON(t, resp, &list)
	got := strings.Join(list.Orders, " ")
	if len(list.Orders) != 2 || !strings.Contains(got, loc1) || !strings.Contains(got, loc2) {
		t.Errorf("orders = %v, want %s and %s", list.Orders, loc1, loc2)
	}
}

func TestFinalize_NotReady(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, _ := c.newOrder("a.example.test")
	resp := c.post(o.Finalize, map[string]string{"csr": "AAAA"})
	expectProblem(t, resp, http.StatusForbidden, probOrderNotReady)
	if n := e.applier.count(fsm.CmdACMEProcessOrder); n != 0 {
		t.Errorf("%d processing commands, want 0", n)
	}
}

func TestFinalize_BadCSR(t *testing.T) {
	e := newProtoEnv(t, Options{}, "*.example.test")
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, loc := c.newOrder("a.example.test")
	cases := map[string]string{
		"NotBase64":  "***",
		"NotDER":     "AAAA",
		"WrongNames": csrFor(t, "b.example.test"),
		"ExtraName":  csrFor(t, "a.example.test", "b.example.test"),
		"BadSignature": func() string {
			der, _ := base64.RawURLEncoding.DecodeString(csrFor(t, "a.example.test"))
			der[len(der)-1] ^= 0xff // the last byte of the signature
			return base64.RawURLEncoding.EncodeToString(der)
		}(),
	}
	for name, csr := range cases {
		t.Run(name, func(t *testing.T) {
			resp := c.post(o.Finalize, map[string]string{"csr": csr})
			expectProblem(t, resp, http.StatusBadRequest, probBadCSR)
			if got := c.order(loc).Status; got != "ready" {
				t.Errorf("order status = %q, want ready", got)
			}
		})
	}
	if n := e.applier.count(fsm.CmdACMEProcessOrder); n != 0 {
		t.Errorf("%d processing commands, want 0", n)
	}
}

func TestAuthz_Deactivate(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, loc := c.newOrder("a.example.test")
	resp := c.post(o.Authorizations[0], map[string]string{"status": "deactivated"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	var a authzJSON
	decodeJSON(t, resp, &a)
	if a.Status != "deactivated" {
		t.Errorf("authz status = %q", a.Status)
	}
	if got := c.order(loc).Status; got != "invalid" {
		t.Errorf("order status = %q, want invalid", got)
	}
	resp = c.post(o.Authorizations[0], map[string]string{"status": "valid"})
	expectProblem(t, resp, http.StatusBadRequest, probMalformed)
}

func TestFinalize_CAUnavailableKeepsOrderReady(t *testing.T) {
	e := newProtoEnv(t, Options{}, "*.example.test")
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, loc := c.newOrder("a.example.test")
	resp := c.post(o.Finalize, map[string]string{"csr": csrFor(t, "a.example.test")})
	expectProblem(t, resp, http.StatusServiceUnavailable, probServerInternal)
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("503 response has no Retry-After")
	}
	if got := c.order(loc).Status; got != "ready" {
		t.Errorf("order status = %q, want ready for another finalize", got)
	}
}

// TestFinalize_CARejectsCSR covers a CSR that the CA's policy rejects, in
// Check before the order is processing (the order stays ready) and in Issue
// after it, when the policy changed in between (the order becomes invalid).
func TestFinalize_CARejectsCSR(t *testing.T) {
	e := newProtoEnv(t, Options{}, "*.example.test")
	c := newTestClient(t, e.root)
	c.register(e.eab)
	rejections := []struct {
		name, message, typ string
	}{
		{"KeyType", "key type rsa-2048 is not allowed by the SubCA policy", probBadCSR},
		{"Name", `invalid DNS name "b.example.test"`, probRejectedIdentifier},
	}
	stages := []struct {
		name       string
		checkFails bool
		wantStatus string
	}{
		{"Check", true, "ready"},
		{"Issue", false, "invalid"},
	}
	for _, stage := range stages {
		for _, tc := range rejections {
			t.Run(stage.name+"/"+tc.name, func(t *testing.T) {
				err := fsm.Errorf(fsm.CodeInvalidArgument, "%s", tc.message)
				if stage.checkFails {
					e.issuer.setCheck(err)
					e.issuer.set(nil)
				} else {
					e.issuer.setCheck(nil)
					e.issuer.set(err)
				}
				processing := e.applier.count(fsm.CmdACMEProcessOrder)
				o, loc := c.newOrder("b.example.test")
				resp := c.post(o.Finalize, map[string]string{"csr": csrFor(t, "b.example.test")})
				p := expectProblem(t, resp, http.StatusBadRequest, tc.typ)
				if p.Detail != tc.message {
					t.Errorf("detail = %q, want the CA's message", p.Detail)
				}
				final := c.order(loc)
				if final.Status != stage.wantStatus {
					t.Errorf("order status = %q, want %s", final.Status, stage.wantStatus)
				}
				if stage.checkFails {
					if n := e.applier.count(fsm.CmdACMEProcessOrder) - processing; n != 0 {
						t.Errorf("%d processing commands after a rejected Check, want 0", n)
					}
				} else if final.Error == nil || final.Error.Type != tc.typ {
					t.Errorf("order error %+v, want %s", final.Error, tc.typ)
				}
			})
		}
	}
}
