//go:build e2e

package drills

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspClient is the HTTP client of every OCSP request. Its timeout bounds
// a request to a node that does not respond.
var ocspClient = &http.Client{Timeout: 5 * time.Second}

// ocspStatus sends an OCSP request for leaf to baseURL with GET
// (RFC 5019: /ocsp/{url-encoded base64 request}), as relying parties do,
// verifies the response's signature with the issuer, and returns the
// status: good, revoked or unknown.
func ocspStatus(ctx context.Context, baseURL string, leaf, issuer *x509.Certificate) (
	string, error) {
	reqDER, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		return "", fmt.Errorf("create OCSP request: %w", err)
	}
	u := baseURL + "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(reqDER))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := ocspClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read OCSP response from %s: %w", baseURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("OCSP %s: HTTP %s", baseURL, resp.Status)
	}
	return parseOCSP(body, leaf, issuer)
}

func parseOCSP(der []byte, leaf, issuer *x509.Certificate) (string, error) {
	r, err := ocsp.ParseResponseForCert(der, leaf, issuer)
	if err != nil {
		return "", fmt.Errorf("parse OCSP response: %w", err)
	}
	switch r.Status {
	case ocsp.Good:
		return "good", nil
	case ocsp.Revoked:
		return "revoked", nil
	default:
		return "unknown", nil
	}
}
