package ocsp

import (
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	xocsp "golang.org/x/crypto/ocsp"
)

// Nonce length limits of RFC 9654, 2.1: a request with a shorter or longer
// nonce is rejected with malformedRequest.
const (
	minNonceLen = 1
	maxNonceLen = 128
)

// oidNonce is id-pkix-ocsp-nonce.
var oidNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}

// errMalformed marks requests that get the malformedRequest response status.
var errMalformed = errors.New("malformed OCSP request")

// request is a parsed single-certificate OCSP request.
type request struct {
	*xocsp.Request
	// nonce is the request's nonce extension, echoed unchanged in the
	// response, or nil.
	nonce *pkix.Extension
}

// ocspRequest is OCSPRequest (RFC 6960, 4.1.1). Its fields and types are
// those of x/crypto/ocsp's request structures (x/crypto v0.59.0) plus
// requestExtensions, which x/crypto/ocsp skips. So one encoding/asn1 pass
// accepts what ocsp.ParseRequest accepts and also reads the extensions.
type ocspRequest struct {
	TBSRequest        tbsRequest
	OptionalSignature asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type tbsRequest struct {
	Version           int              `asn1:"explicit,tag:0,default:0,optional"`
	RequestorName     pkix.RDNSequence `asn1:"explicit,tag:1,optional"`
	RequestList       []singleRequest
	RequestExtensions []pkix.Extension `asn1:"explicit,tag:2,optional"`
}

// singleRequest is Request. encoding/asn1 ignores the elements after the
// last field of a SEQUENCE, here singleRequestExtensions.
type singleRequest struct {
	Cert certID
}

// parseRequest parses a DER OCSPRequest for exactly one certificate. Every
// error wraps errMalformed. The common encoding is read without reflection
// (parseCommonRequest); anything else goes through encoding/asn1.
func parseRequest(der []byte) (*request, error) {
	tbs, ok := parseCommonRequest(der)
	if !ok {
		var err error
		if tbs, err = unmarshalRequest(der); err != nil {
			return nil, err
		}
	}
	return checkRequest(tbs)
}

// unmarshalRequest decodes an OCSPRequest with encoding/asn1 and rejects
// trailing bytes and signed requests, as x/crypto/ocsp.ParseRequest does.
func unmarshalRequest(der []byte) (*tbsRequest, error) {
	var raw ocspRequest
	rest, err := asn1.Unmarshal(der, &raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	case len(rest) > 0:
		return nil, fmt.Errorf("%w: %d bytes after the request", errMalformed, len(rest))
	case len(raw.OptionalSignature.FullBytes) > 0:
		return nil, fmt.Errorf("%w: signed requests are not supported", errMalformed)
	}
	return &raw.TBSRequest, nil
}

// checkRequest checks a decoded request: version 1, one certificate, a
// known CertID hash algorithm and at most one valid nonce.
func checkRequest(tbs *tbsRequest) (*request, error) {
	if tbs.Version != 0 {
		return nil, fmt.Errorf("%w: version %d, want v1 (0)", errMalformed, tbs.Version)
	}
	if n := len(tbs.RequestList); n != 1 {
		return nil, fmt.Errorf(
			"%w: request lists %d certificates, but this responder accepts one per request",
			errMalformed, n)
	}
	id := &tbs.RequestList[0].Cert
	hash, ok := certIDHash(id.HashAlgorithm.Algorithm)
	if !ok {
		return nil, fmt.Errorf("%w: unsupported CertID hash algorithm %s",
			errMalformed, id.HashAlgorithm.Algorithm)
	}
	nonce, err := findNonce(tbs.RequestExtensions)
	if err != nil {
		return nil, err
	}
	certID := &xocsp.Request{
		HashAlgorithm:  hash,
		IssuerNameHash: id.NameHash,
		IssuerKeyHash:  id.IssuerKeyHash,
		SerialNumber:   id.SerialNumber,
	}
	return &request{Request: certID, nonce: nonce}, nil
}

// certIDHash returns the hash algorithm of a CertID's hashAlgorithm OID.
func certIDHash(oid asn1.ObjectIdentifier) (crypto.Hash, bool) {
	for _, hash := range certIDHashes {
		if hashAlgorithmOIDs[hash].Equal(oid) {
			return hash, true
		}
	}
	return 0, false
}

// findNonce returns the nonce extension, or nil. It rejects a second nonce,
// a nonce of the wrong length and any other critical extension, because RFC
// 6960, 4.4 allows ignoring only non-critical extensions.
func findNonce(exts []pkix.Extension) (*pkix.Extension, error) {
	var nonce *pkix.Extension
	for i := range exts {
		ext := &exts[i]
		if !ext.Id.Equal(oidNonce) {
			if ext.Critical {
				return nil, fmt.Errorf("%w: unsupported critical extension %s", errMalformed, ext.Id)
			}
			continue
		}
		if nonce != nil {
			return nil, fmt.Errorf("%w: more than one nonce", errMalformed)
		}
		if n := nonceLen(ext.Value); n < minNonceLen || n > maxNonceLen {
			return nil, fmt.Errorf("%w: nonce of %d octets, want %d to %d",
				errMalformed, n, minNonceLen, maxNonceLen)
		}
		nonce = ext
	}
	return nonce, nil
}

// nonceLen returns the length of the nonce in an extnValue. RFC 6960 and later
// wrap the nonce in an OCTET STRING; clients that follow RFC 2560 put the
// bare value, which is measured whole.
func nonceLen(extnValue []byte) int {
	var inner []byte
	rest, err := asn1.Unmarshal(extnValue, &inner)
	if err == nil && len(rest) == 0 {
		return len(inner)
	}
	return len(extnValue)
}

// decodeGETPath decodes the base64 request of a GET, given the decoded URL
// path after the mount prefix. See the package documentation for the
// spellings it accepts. Every error wraps errMalformed.
func decodeGETPath(rest string, maxBytes int) ([]byte, error) {
	s := strings.TrimLeft(rest, "/")
	if s == "" {
		return nil, fmt.Errorf("%w: GET without a request in the path", errMalformed)
	}
	if base64.RawStdEncoding.DecodedLen(len(s)) > maxBytes {
		return nil, fmt.Errorf("%w: GET request longer than %d bytes", errMalformed, maxBytes)
	}
	s = strings.Map(normalizeBase64, s)
	s = strings.TrimRight(s, "=")
	der, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid base64 in GET path: %v", errMalformed, err)
	}
	return der, nil
}

// normalizeBase64 maps the URL-safe alphabet back to the standard one, and a
// space to '+', because a proxy that form-decodes the path turns '+' into a
// space.
func normalizeBase64(r rune) rune {
	switch r {
	case ' ', '-':
		return '+'
	case '_':
		return '/'
	}
	return r
}
