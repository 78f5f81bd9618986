package acme

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"anchor/fsm"
)

// maxHTTP01Body bounds the body read from a challenge response.
const maxHTTP01Body = 8 << 10

// maxRedirects bounds the redirects http-01 validation follows.
const maxRedirects = 10

// http01 fetches http://{identifier}:{port}/.well-known/acme-challenge/{token}
// and compares the body, without surrounding white space, with the key
// authorization (RFC 8555, 8.3, and RFC 8738 for IP addresses).
func (v *validator) http01(ctx context.Context, id fsm.ACMEIdentifier, token,
	keyAuth string) *problem {
	url := "http://" + hostPort(id.Value, v.http01Port) + "/.well-known/acme-challenge/" + token
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return internalProblem("build http-01 request: %v", err)
	}
	resp, err := v.httpClient().Do(req)
	if err != nil {
		return asProblem(err, "http-01 request to %s failed: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return newProblem(probUnauthorized, http.StatusForbidden,
			"http-01 response from %s has status %d, not 200", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTP01Body+1))
	if err != nil {
		return asProblem(err, "read http-01 response from %s: %v", url, err)
	}
	if len(body) > maxHTTP01Body {
		return newProblem(probUnauthorized, http.StatusForbidden,
			"http-01 response from %s is longer than %d bytes", url, maxHTTP01Body)
	}
	if got := string(bytes.TrimSpace(body)); got != keyAuth {
		return newProblem(probIncorrectResponse, http.StatusForbidden,
			"http-01 response from %s is %q, not the key authorization", url, truncate(got, 64))
	}
	return nil
}

// httpClient returns a client that dials through the validator, follows up
// to maxRedirects redirects to http or https on the configured or standard
// ports, and does not verify certificates after a redirect to https.
func (v *validator) httpClient() *http.Client {
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, portText, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			port, err := strconv.Atoi(portText)
			if err != nil {
				return nil, err
			}
			return v.dialHost(ctx, network, host, port)
		},
		// After a redirect to https the key authorization, not the certificate,
		// is the proof.
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives: true,
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			return v.checkRedirect(req)
		},
	}
}

func (v *validator) checkRedirect(req *http.Request) error {
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to scheme %q", req.URL.Scheme)
	}
	port := req.URL.Port()
	allowed := map[string]bool{
		"": true, "80": true, "443": true,
		strconv.Itoa(v.http01Port): true, strconv.Itoa(v.tlsALPNPort): true,
	}
	if !allowed[port] {
		return fmt.Errorf("redirect to port %s", port)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
