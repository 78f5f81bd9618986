package crl

import (
	"net/url"
	"strconv"
	"strings"

	"anchor/fsm"
)

// URL layout under pathPrefix, for CA ID "org/realm/chain/ca":
//
//	org/realm/chain/ca.crl               full CRL of the CA
//	org/realm/chain/ca.delta.crl         its delta CRL
//	org/realm/chain/ca/{shard}.crl       CRL of one shard of a SubCA
//	org/realm/chain/ca/{shard}.delta.crl its delta CRL
//
// CA names are DNS labels, which contain no dot, so the suffixes are
// unambiguous.
const (
	pathPrefix  = "/crl/"
	suffixFull  = ".crl"
	suffixDelta = ".delta.crl"
)

// caIDSegments is the number of path segments of a CA ID.
const caIDSegments = 4

// URL returns the HTTP URL of a CA's full CRL on the node at baseURL, such
// as "http://pki.example.net/crl/acme/prod/web/sub1.crl" for CA ID
// "acme/prod/web/sub1". The slashes of the CA ID stay path separators and
// each segment is escaped.
func URL(baseURL, caID string) string {
	return strings.TrimRight(baseURL, "/") + pathPrefix + escapeID(caID) + suffixFull
}

// ShardURL returns the HTTP URL of one shard CRL of a SubCA on the node at
// baseURL, such as "http://pki.example.net/crl/acme/prod/web/sub1/3.crl".
func ShardURL(baseURL, caID string, shard int) string {
	return strings.TrimRight(baseURL, "/") + pathPrefix + escapeID(caID) + "/" +
		strconv.Itoa(shard) + suffixFull
}

// ShardURLs turns the full-CRL URLs of a SubCA (fsm.Policy.CRLURLs, made by
// URL) into the URLs of one shard's CRL. The CRL distribution points of a
// leaf and the issuing distribution point of its shard CRL both use it, so
// they match.
func ShardURLs(crlURLs []string, shard int) []string {
	out := make([]string, 0, len(crlURLs))
	for _, u := range crlURLs {
		out = append(out, strings.TrimSuffix(u, suffixFull)+"/"+strconv.Itoa(shard)+suffixFull)
	}
	return out
}

// DeltaURLs turns the URLs of complete CRLs into the URLs of their delta
// CRLs, which the freshest CRL extension names.
func DeltaURLs(crlURLs []string) []string {
	out := make([]string, 0, len(crlURLs))
	for _, u := range crlURLs {
		out = append(out, strings.TrimSuffix(u, suffixFull)+suffixDelta)
	}
	return out
}

func escapeID(caID string) string {
	parts := strings.Split(caID, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// parsePath returns the scope and kind of a CRL request path. It reports
// false for paths outside the layout above.
func parsePath(path string) (scope fsm.CRLScope, delta bool, ok bool) {
	rest, ok := strings.CutPrefix(path, pathPrefix)
	if !ok {
		return fsm.CRLScope{}, false, false
	}
	if rest, delta = strings.CutSuffix(rest, suffixDelta); !delta {
		if rest, ok = strings.CutSuffix(rest, suffixFull); !ok {
			return fsm.CRLScope{}, false, false
		}
	}
	parts := strings.Split(rest, "/")
	for _, p := range parts {
		if p == "" {
			return fsm.CRLScope{}, false, false
		}
	}
	switch len(parts) {
	case caIDSegments:
		return fsm.FullScope(rest), delta, true
	case caIDSegments + 1:
		shard, err := strconv.Atoi(parts[caIDSegments])
		if err != nil || shard < 0 || strconv.Itoa(shard) != parts[caIDSegments] {
			return fsm.CRLScope{}, false, false
		}
		caID := strings.Join(parts[:caIDSegments], "/")
		return fsm.ShardScope(caID, shard), delta, true
	}
	return fsm.CRLScope{}, false, false
}

// scopeURLs returns the URLs of a scope's complete CRL, derived from the
// CA's full-CRL URLs.
func scopeURLs(ca *fsm.CA, scope fsm.CRLScope) []string {
	if scope.Sharded {
		return ShardURLs(ca.Policy.CRLURLs, scope.Shard)
	}
	return ca.Policy.CRLURLs
}
