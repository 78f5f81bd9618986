package ocsp

import (
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
)

// awkwardSerial returns a serial whose SHA-1 OCSP request for the SubCA has a
// base64 form with "//", '+' and '=' padding, so that every GET spelling
// differs from the plain one.
func (p *testPKI) awkwardSerial() *big.Int {
	p.t.Helper()
	for range 100_000 {
		serial := randomSerial()
		der, err := xocsp.CreateRequest(leafTemplate("probe", serial), p.subCert, nil)
		if err != nil {
			p.t.Fatal(err)
		}
		b64 := base64.StdEncoding.EncodeToString(der)
		if strings.Contains(b64, "//") && strings.Contains(b64, "+") && strings.HasSuffix(b64, "=") {
			return serial
		}
	}
	p.t.Fatal("found no serial with an awkward base64 request")
	return nil
}

// opensslRequest writes the request openssl builds for leaf, without sending
// it, and returns its DER. The extra options go before -cert, where openssl
// expects a digest option.
func (p *testPKI) opensslRequest(leaf string, extra ...string) []byte {
	p.t.Helper()
	reqPath := filepath.Join(p.dir, "req.der")
	args := append([]string{"ocsp", "-issuer", p.subPEM}, extra...)
	args = append(args, "-cert", leaf, "-reqout", reqPath)
	if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
		p.t.Fatalf("openssl ocsp -reqout: %v\n%s", err, out)
	}
	der, err := os.ReadFile(reqPath)
	if err != nil {
		p.t.Fatal(err)
	}
	return der
}

// getRaw sends a GET with the request-target exactly as given.
func (p *testPKI) getRaw(target string, header http.Header) *http.Response {
	p.t.Helper()
	u, err := url.Parse(p.server.URL)
	if err != nil {
		p.t.Fatal(err)
	}
	req := &http.Request{
		Method: http.MethodGet,
		URL:    &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: target},
		Host:   u.Host,
		Header: header,
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("GET %s: %v", target, err)
	}
	return resp
}

// verifyWithOpenSSL checks a response file with openssl against leaf.
func (p *testPKI) verifyWithOpenSSL(t *testing.T, body []byte, leaf, want string) {
	t.Helper()
	respPath := filepath.Join(p.dir, "get-resp.der")
	if err := os.WriteFile(respPath, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := p.opensslOCSP("-issuer", p.subPEM, "-cert", leaf, "-respin", respPath, "-no_nonce")
	requireOutput(t, out, err, "Response verify OK", leaf+": "+want)
}

var (
	percentEncoder      = strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D")
	lowerPercentEncoder = strings.NewReplacer("/", "%2f", "+", "%2b", "=", "%3d")
)

func TestResponder_GETEncodings(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("get.example.net", p.awkwardSerial())
	der := p.opensslRequest(leaf, "-no_nonce")
	b64 := base64.StdEncoding.EncodeToString(der)
	if !strings.Contains(b64, "//") || !strings.Contains(b64, "+") || !strings.HasSuffix(b64, "=") {
		t.Fatalf("openssl request %s lacks \"//\", '+' or '=' padding", b64)
	}

	cases := []struct {
		name, target string
	}{
		{"percent-encoded", "/ocsp/" + percentEncoder.Replace(b64)},
		{"lower-case percent-encoding", "/ocsp/" + lowerPercentEncoder.Replace(b64)},
		{"raw", "/ocsp/" + b64},
		{"leading slash", "/ocsp//" + percentEncoder.Replace(b64)},
		{"leading slashes raw", "/ocsp///" + b64},
		{"space for plus", "/ocsp/" + strings.ReplaceAll(b64, "+", "%20")},
		{"url-safe unpadded", "/ocsp/" + base64.RawURLEncoding.EncodeToString(der)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := p.getRaw(c.target, nil)
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: status %d: %s", c.target, resp.StatusCode, body)
			}
			p.verifyWithOpenSSL(t, body, leaf, "good")
		})
	}
}

func TestResponder_GETCachingHeaders(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("cache.example.net", randomSerial())
	target := "/ocsp/" + percentEncoder.Replace(base64.StdEncoding.EncodeToString(
		p.opensslRequest(leaf, "-no_nonce")))
	resp := p.getRaw(target, nil)
	body := readAll(t, resp)
	parsed, err := xocsp.ParseResponse(body, p.subCert)
	if err != nil {
		t.Fatal(err)
	}

	cc := resp.Header.Get("Cache-Control")
	for _, want := range []string{"public", "no-transform", "must-revalidate"} {
		if !strings.Contains(cc, want) {
			t.Errorf("Cache-Control %q lacks %s", cc, want)
		}
	}
	maxAge := maxAgeOf(t, cc)
	untilNext := time.Until(parsed.NextUpdate)
	if maxAge <= 0 || time.Duration(maxAge)*time.Second > untilNext+time.Second {
		t.Errorf("max-age %d, want positive and at most %s until nextUpdate", maxAge, untilNext)
	}
	expires, err := http.ParseTime(resp.Header.Get("Expires"))
	if err != nil || !expires.Equal(parsed.NextUpdate) {
		t.Errorf("Expires %q, want nextUpdate %s", resp.Header.Get("Expires"), parsed.NextUpdate)
	}
	lastModified, err := http.ParseTime(resp.Header.Get("Last-Modified"))
	if err != nil || !lastModified.Equal(parsed.ThisUpdate) {
		t.Errorf("Last-Modified %q, want thisUpdate %s",
			resp.Header.Get("Last-Modified"), parsed.ThisUpdate)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/ocsp-response" {
		t.Errorf("Content-Type %q, want application/ocsp-response", ct)
	}

	etag := resp.Header.Get("ETag")
	again := p.getRaw(target, http.Header{"If-None-Match": {etag}})
	again.Body.Close()
	if etag == "" || again.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match %q: status %d, want 304", etag, again.StatusCode)
	}
}

func maxAgeOf(t *testing.T, cacheControl string) int {
	t.Helper()
	for _, directive := range strings.Split(cacheControl, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(directive), "max-age="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("Cache-Control %q: %v", cacheControl, err)
			}
			return n
		}
	}
	t.Fatalf("Cache-Control %q has no max-age", cacheControl)
	return 0
}

func TestResponder_GETWithNonceNotCacheable(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("nonce-get.example.net", randomSerial())
	der := p.opensslRequest(leaf) // openssl adds a nonce by default
	resp := p.getRaw("/ocsp/"+percentEncoder.Replace(base64.StdEncoding.EncodeToString(der)), nil)
	body := readAll(t, resp)
	for _, h := range []string{"Cache-Control", "Expires", "ETag", "Last-Modified"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("nonce response has %s: %s", h, v)
		}
	}
	reqPath := filepath.Join(p.dir, "nonce-req.der")
	respPath := filepath.Join(p.dir, "nonce-resp.der")
	os.WriteFile(reqPath, der, 0o600)
	os.WriteFile(respPath, body, 0o600)
	// With -reqin, openssl compares the response nonce with the request's.
	// Without -cert it prints no status, which ParseResponse checks instead.
	out, err := p.opensslOCSP("-reqin", reqPath, "-respin", respPath)
	requireOutput(t, out, err, "Response verify OK")
	parsed, err := xocsp.ParseResponse(body, p.subCert)
	if err != nil || parsed.Status != xocsp.Good {
		t.Errorf("nonce response: %v, status %+v, want good", err, parsed)
	}
	if strings.Contains(out, "WARNING") || strings.Contains(out, "nonce verify error") {
		t.Errorf("openssl reports a nonce problem:\n%s", out)
	}
}

func TestResponder_POSTNotCacheable(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("post.example.net", randomSerial())
	der := p.opensslRequest(leaf, "-no_nonce")
	resp, err := http.Post(p.ocspURL(), "application/ocsp-request", strings.NewReader(string(der)))
	if err != nil {
		t.Fatal(err)
	}
	p.verifyWithOpenSSL(t, readAll(t, resp), leaf, "good")
	if cc := resp.Header.Get("Cache-Control"); cc != "" {
		t.Errorf("POST response has Cache-Control %q", cc)
	}
}

// TestServeMux_RedirectsRepeatedSlashes shows why the Responder goes in front
// of the mux: a mux redirects a GET whose base64 contains "//" to a path
// without it.
func TestServeMux_RedirectsRepeatedSlashes(t *testing.T) {
	p := newTestPKI(t)
	mux := http.NewServeMux()
	mux.Handle("/ocsp/", p.responder)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ocsp/MEow//AAA=", nil))
	if rec.Code != http.StatusTemporaryRedirect && rec.Code != http.StatusMovedPermanently {
		t.Fatalf("mux returned status %d, so update the package documentation: it no longer redirects",
			rec.Code)
	}
	if loc := rec.Header().Get("Location"); strings.Contains(loc, "//") {
		t.Errorf("mux redirected to %q, which keeps the repeated slash", loc)
	}
}
