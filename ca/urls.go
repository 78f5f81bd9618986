package ca

import (
	"net/url"
	"strings"
)

// URLs are the base HTTP URLs of the nodes that serve OCSP, CRLs and CA
// certificates, such as "http://ocsp1.example.net:8080". Every node serves the
// same responses, so certificates list all of them.
type URLs []string

// OCSP returns the OCSP responder URLs.
func (u URLs) OCSP() []string { return u.join(func(b string) string { return b + "/ocsp" }) }

// CRL returns the URLs of a CA's CRL.
func (u URLs) CRL(caID string) []string {
	return u.join(func(b string) string { return b + "/crl/" + escapeID(caID) + ".crl" })
}

// Issuer returns the URLs of a CA's certificate.
func (u URLs) Issuer(caID string) []string {
	return u.join(func(b string) string { return b + "/ca/" + escapeID(caID) + ".der" })
}

func (u URLs) join(f func(base string) string) []string {
	out := make([]string, 0, len(u))
	for _, b := range u {
		out = append(out, f(strings.TrimRight(b, "/")))
	}
	return out
}

// escapeID keeps the slashes of a CA ID ("org/realm/chain/name") as path
// separators and escapes each segment.
func escapeID(id string) string {
	parts := strings.Split(id, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}
