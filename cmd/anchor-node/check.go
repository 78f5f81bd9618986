package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// checkTimeout bounds one readiness check, under the interval of a container
// health check.
const checkTimeout = 3 * time.Second

// readyURL returns the /readyz URL of a node whose HTTP listener is
// httpAddr. A listener on every address (empty or unspecified host) is
// reached on loopback.
func readyURL(httpAddr string) (string, error) {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return "", fmt.Errorf("invalid http_addr %q: %w", httpAddr, err)
	}
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.IsUnspecified() && ip.To4() != nil):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// checkReady requests url and returns nil when it returns 200, which
// /readyz does once the node has applied the cluster's commit index.
func checkReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("node not reachable at %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("node not ready: %s returned %s: %s", url, resp.Status,
			strings.TrimSpace(string(body)))
	}
	return nil
}
