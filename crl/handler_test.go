package crl

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"anchor/fsm"
)

func TestHandler_NotFoundBeforePublication(t *testing.T) {
	p := newTestPKI(t)
	for _, caID := range []string{subID, "acme/prod/web/missing"} {
		resp, err := http.Get(URL(p.server.URL, caID))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET CRL of %s: status %d, want 404", caID, resp.StatusCode)
		}
	}
}

func TestHandler_CachingHeaders(t *testing.T) {
	p := newTestPKI(t)
	p.startPublisher(PublisherOptions{})
	crl := p.waitCRL(subID, "exists", func(*fsm.CRL) bool { return true })

	resp, err := http.Get(URL(p.server.URL, subID))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, crl.DER) {
		t.Fatalf("GET: status %d, %d bytes, want 200 and the stored %d bytes",
			resp.StatusCode, len(body), len(crl.DER))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/pkix-crl" {
		t.Errorf("Content-Type %q, want application/pkix-crl", ct)
	}
	cc := resp.Header.Get("Cache-Control")
	maxAge, err := strconv.Atoi(strings.TrimPrefix(cc, "public, max-age="))
	if err != nil || maxAge <= 0 || maxAge > int(DefaultValidity/time.Second) {
		t.Errorf("Cache-Control %q, want public with max-age until nextUpdate", cc)
	}
	lastModified, err := http.ParseTime(resp.Header.Get("Last-Modified"))
	if err != nil || !lastModified.Equal(crl.ThisUpdate) {
		t.Errorf("Last-Modified %q, want thisUpdate %s",
			resp.Header.Get("Last-Modified"), crl.ThisUpdate)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}

	req, _ := http.NewRequest(http.MethodGet, URL(p.server.URL, subID), nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match: status %d, want 304", resp.StatusCode)
	}
}

func TestHandler_RejectsPost(t *testing.T) {
	p := newTestPKI(t)
	resp, err := http.Post(URL(p.server.URL, subID), "application/pkix-crl", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", resp.StatusCode)
	}
}

func TestHandler_UnavailableUntilReady(t *testing.T) {
	p := newTestPKI(t)
	p.startPublisher(PublisherOptions{})
	crl := p.waitCRL(subID, "exists", func(*fsm.CRL) bool { return true })
	var ready atomic.Bool
	server := httptest.NewServer(NewHandler(p.st, p.logger, ready.Load))
	t.Cleanup(server.Close)

	resp, err := http.Get(URL(server.URL, subID))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET before ready: status %d, want 503", resp.StatusCode)
	}
	if got := resp.Header.Get("Retry-After"); got != "1" {
		t.Errorf("GET before ready: Retry-After %q, want 1", got)
	}

	ready.Store(true)
	resp, err = http.Get(URL(server.URL, subID))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, crl.DER) {
		t.Errorf("GET when ready: status %d, %d bytes, want 200 and the stored %d bytes",
			resp.StatusCode, len(body), len(crl.DER))
	}
}
