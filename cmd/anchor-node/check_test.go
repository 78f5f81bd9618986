package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestReadyURL_ListenAddresses(t *testing.T) {
	cases := map[string]string{
		"0.0.0.0:8080":    "http://127.0.0.1:8080/readyz",
		":8080":           "http://127.0.0.1:8080/readyz",
		"[::]:8080":       "http://[::1]:8080/readyz",
		"10.1.2.3:8080":   "http://10.1.2.3:8080/readyz",
		"node1.test:8080": "http://node1.test:8080/readyz",
	}
	for addr, want := range cases {
		got, err := readyURL(addr)
		if err != nil || got != want {
			t.Errorf("readyURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := readyURL("8080"); err == nil {
		t.Error("readyURL accepted an address without a port")
	}
}

func TestCheckReady_StatusDecides(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready.Load() {
			http.Error(w, "catching up", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	err := checkReady(t.Context(), srv.URL+"/readyz")
	if err == nil {
		t.Fatal("a node that returns 503 counted as ready")
	}
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("error %q does not name the status", err)
	}
	if !strings.Contains(err.Error(), "catching up") {
		t.Errorf("error %q does not include the node's reason", err)
	}
	ready.Store(true)
	if err := checkReady(t.Context(), srv.URL+"/readyz"); err != nil {
		t.Errorf("a node that returns 200: %v", err)
	}
	srv.Close()
	if err := checkReady(t.Context(), srv.URL+"/readyz"); err == nil {
		t.Error("an unreachable node counted as ready")
	}
}
