package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/miekg/dns"
)

// testDNS is a DNS server on loopback: every A query returns 127.0.0.1 and
// TXT queries return the records set with setTXT.
type testDNS struct {
	addr string
	mu   sync.Mutex
	txt  map[string][]string
}

func newTestDNS(t *testing.T) *testDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &testDNS{addr: pc.LocalAddr().String(), txt: map[string][]string{}}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.serve)}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return d
}

func (d *testDNS) setTXT(name string, values ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txt[dns.Fqdn(name)] = values
}

// addTXT adds value to the TXT records of name.
func (d *testDNS) addTXT(name, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := strings.ToLower(dns.Fqdn(name))
	d.txt[key] = append(d.txt[key], value)
}

// removeTXT removes value from the TXT records of name.
func (d *testDNS) removeTXT(name, value string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := strings.ToLower(dns.Fqdn(name))
	d.txt[key] = slices.DeleteFunc(d.txt[key], func(v string) bool { return v == value })
}

func (d *testDNS) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	for _, q := range r.Question {
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Rrtype: q.Qtype, Ttl: 0}
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1)})
		case dns.TypeTXT:
			d.mu.Lock()
			for _, v := range d.txt[strings.ToLower(q.Name)] {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{v}})
			}
			d.mu.Unlock()
		}
	}
	_ = w.WriteMsg(m)
}

// keyAuthorization returns token.thumbprint for the client's key.
func (c *testClient) keyAuthorization(token string) string {
	c.t.Helper()
	sum, err := (&jose.JSONWebKey{Key: c.key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		c.t.Fatal(err)
	}
	return token + "." + base64.RawURLEncoding.EncodeToString(sum)
}

// challenge returns the authorization's challenge of the given type.
func challengeOf(t *testing.T, a authzJSON, typ string) challengeJSON {
	t.Helper()
	for _, ch := range a.Challenges {
		if ch.Type == typ {
			return ch
		}
	}
	t.Fatalf("authorization of %s has no %s challenge", a.Identifier.Value, typ)
	return challengeJSON{}
}

// respond posts to the challenge and waits until its authorization leaves
// pending.
func (c *testClient) respond(authzURL string, ch challengeJSON) authzJSON {
	c.t.Helper()
	resp := c.post(ch.URL, map[string]any{})
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("challenge POST: status %d: %s", resp.StatusCode, readBody(c.t, resp))
	}
	if !strings.Contains(strings.Join(resp.Header.Values("Link"), ","), `rel="up"`) {
		c.t.Errorf("challenge response has no Link rel=\"up\"")
	}
	var a authzJSON
	waitFor(c.t, 15*time.Second, "authorization to leave pending", func() bool {
		a = c.authz(authzURL)
		return a.Status != "pending"
	})
	return a
}

// serveHTTP01 serves body at the challenge path of token on a loopback
// port and returns the port.
func serveHTTP01(t *testing.T, token, body string) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/acme-challenge/"+token, func(w http.ResponseWriter,
		_ *http.Request) {
		_, _ = w.Write([]byte(body))
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return lis.Addr().(*net.TCPAddr).Port
}

// reservePort returns a free loopback port for a server that the test
// starts after the ACME server.
func reservePort(t *testing.T) (net.Listener, int) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	return lis, lis.Addr().(*net.TCPAddr).Port
}

func TestHTTP01_Valid(t *testing.T) {
	d := newTestDNS(t)
	lis, port := reservePort(t)
	e := newProtoEnv(t, Options{HTTP01Port: port, DNSResolver: d.addr})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, loc := c.newOrder("www.example.test")
	ch := challengeOf(t, c.authz(o.Authorizations[0]), challengeHTTP01)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/acme-challenge/"+ch.Token,
		func(w http.ResponseWriter, r *http.Request) {
			if r.Host != "www.example.test:"+strconv.Itoa(port) {
				http.Error(w, "wrong host "+r.Host, http.StatusNotFound)
				return
			}
			_, _ = w.Write([]byte(c.keyAuthorization(ch.Token) + "\n"))
		})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })

	a := c.respond(o.Authorizations[0], ch)
	if a.Status != "valid" {
		t.Fatalf("authz status = %q: %+v", a.Status, a.Challenges)
	}
	got := challengeOf(t, a, challengeHTTP01)
	if got.Status != "valid" || got.Validated == "" {
		t.Errorf("challenge = %+v, want valid with a validation time", got)
	}
	if s := c.order(loc).Status; s != "ready" {
		t.Errorf("order status = %q, want ready", s)
	}
}

func TestHTTP01_ConnectionRefused(t *testing.T) {
	d := newTestDNS(t)
	lis, port := reservePort(t)
	lis.Close()
	e := newProtoEnv(t, Options{HTTP01Port: port, DNSResolver: d.addr, ValidationAttempts: 1})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, loc := c.newOrder("www.example.test")
	ch := challengeOf(t, c.authz(o.Authorizations[0]), challengeHTTP01)
	// The port was released: nothing listens, so validation cannot connect.
	a := c.respond(o.Authorizations[0], ch)
	if a.Status != "invalid" {
		t.Fatalf("authz status = %q, want invalid", a.Status)
	}
	got := challengeOf(t, a, challengeHTTP01)
	if got.Error == nil || got.Error.Type != probConnection {
		t.Errorf("challenge error = %+v, want %s", got.Error, probConnection)
	}
	if s := c.order(loc).Status; s != "invalid" {
		t.Errorf("order status = %q, want invalid", s)
	}
}

func TestHTTP01_IncorrectBody(t *testing.T) {
	d := newTestDNS(t)
	lis, port := reservePort(t)
	e := newProtoEnv(t, Options{HTTP01Port: port, DNSResolver: d.addr, ValidationAttempts: 1})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, _ := c.newOrder("127.0.0.1")
	ch := challengeOf(t, c.authz(o.Authorizations[0]), challengeHTTP01)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(ch.Token + ".wrong-thumbprint"))
	})}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })

	a := c.respond(o.Authorizations[0], ch)
	got := challengeOf(t, a, challengeHTTP01)
	if a.Status != "invalid" || got.Error == nil || got.Error.Type != probIncorrectResponse {
		t.Errorf("authz %s, challenge error %+v: want invalid with %s", a.Status, got.Error,
			probIncorrectResponse)
	}
}

func TestDNS01_Wildcard(t *testing.T) {
	d := newTestDNS(t)
	e := newProtoEnv(t, Options{DNSResolver: d.addr})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, loc := c.newOrder("*.example.test")
	a := c.authz(o.Authorizations[0])
	if !a.Wildcard || a.Identifier.Value != "example.test" {
		t.Fatalf("authz identifier = %+v wildcard %v", a.Identifier, a.Wildcard)
	}
	ch := challengeOf(t, a, challengeDNS01)
	d.setTXT("_acme-challenge.example.test", "unrelated",
		dns01Digest(c.keyAuthorization(ch.Token)))
	if got := c.respond(o.Authorizations[0], ch); got.Status != "valid" {
		t.Fatalf("authz status = %q: %+v", got.Status, got.Challenges)
	}
	if s := c.order(loc).Status; s != "ready" {
		t.Errorf("order status = %q, want ready", s)
	}
}

func TestDNS01_MissingRecord(t *testing.T) {
	d := newTestDNS(t)
	e := newProtoEnv(t, Options{DNSResolver: d.addr, ValidationAttempts: 1})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, _ := c.newOrder("example.test")
	ch := challengeOf(t, c.authz(o.Authorizations[0]), challengeDNS01)
	d.setTXT("_acme-challenge.example.test", "unrelated")
	a := c.respond(o.Authorizations[0], ch)
	got := challengeOf(t, a, challengeDNS01)
	if a.Status != "invalid" || got.Error == nil || got.Error.Type != probIncorrectResponse {
		t.Errorf("authz %s, challenge error %+v: want invalid with %s", a.Status, got.Error,
			probIncorrectResponse)
	}
}

// serveTLSALPN serves a tls-alpn-01 challenge certificate for name with the
// digest of keyAuth on lis.
func serveTLSALPN(t *testing.T, lis net.Listener, name, keyAuth string, critical bool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(keyAuth))
	value, err := asn1.Marshal(digest[:])
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "challenge"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{
			{Id: oidACMEIdentifier, Critical: critical, Value: value},
		},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{acmeTLSProtocol},
	}
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			tc := tls.Server(conn, cfg)
			_ = tc.Handshake()
			tc.Close()
		}
	}()
}

func TestTLSALPN01_Valid(t *testing.T) {
	for _, name := range []string{"alpn.example.test", "127.0.0.1"} {
		t.Run(name, func(t *testing.T) {
			d := newTestDNS(t)
			lis, port := reservePort(t)
			e := newProtoEnv(t, Options{TLSALPN01Port: port, DNSResolver: d.addr})
			c := newTestClient(t, e.root)
			c.register(e.eab)
			o, _ := c.newOrder(name)
			ch := challengeOf(t, c.authz(o.Authorizations[0]), challengeTLSALPN01)
			serveTLSALPN(t, lis, name, c.keyAuthorization(ch.Token), true)
			if a := c.respond(o.Authorizations[0], ch); a.Status != "valid" {
				t.Fatalf("authz status = %q: %+v", a.Status, a.Challenges)
			}
		})
	}
}

func TestTLSALPN01_NonCriticalExtension(t *testing.T) {
	d := newTestDNS(t)
	lis, port := reservePort(t)
	e := newProtoEnv(t, Options{TLSALPN01Port: port, DNSResolver: d.addr, ValidationAttempts: 1})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, _ := c.newOrder("alpn.example.test")
	ch := challengeOf(t, c.authz(o.Authorizations[0]), challengeTLSALPN01)
	serveTLSALPN(t, lis, "alpn.example.test", c.keyAuthorization(ch.Token), false)
	a := c.respond(o.Authorizations[0], ch)
	got := challengeOf(t, a, challengeTLSALPN01)
	if a.Status != "invalid" || got.Error == nil || got.Error.Type != probIncorrectResponse {
		t.Errorf("authz %s, challenge error %+v: want invalid with %s", a.Status, got.Error,
			probIncorrectResponse)
	}
}

func TestReverseName(t *testing.T) {
	cases := map[string]string{
		"192.0.2.5": "5.2.0.192.in-addr.arpa",
		"2001:db8::1": "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2." +
			"ip6.arpa",
	}
	for in, want := range cases {
		if got := tlsALPNServerName(identifier("ip", in)); got != want {
			t.Errorf("reverse name of %s = %s, want %s", in, got, want)
		}
	}
}

func TestChallenge_PostAsGetDoesNotValidate(t *testing.T) {
	e := newProtoEnv(t, Options{})
	c := newTestClient(t, e.root)
	c.register(e.eab)
	o, _ := c.newOrder("www.example.test")
	ch := challengeOf(t, c.authz(o.Authorizations[0]), challengeHTTP01)
	resp := c.post(ch.URL, nil)
	var got challengeJSON
	decodeJSON(t, resp, &got)
	if got.Status != "pending" {
		t.Errorf("challenge status = %q, want pending", got.Status)
	}
	if n := e.applier.count("acme.challenge.update"); n != 0 {
		t.Errorf("%d challenge updates, want 0", n)
	}
}
