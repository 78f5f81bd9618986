package ocspload

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/url"
	"strings"

	xocsp "golang.org/x/crypto/ocsp"
)

// oidNonce is id-pkix-ocsp-nonce (RFC 9654).
var oidNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}

// oidSHA1 is id-sha1, the CertID hash that OpenSSL sends by default.
var oidSHA1 = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}

// NonceSize is the length of the nonces that requests carry, the 32 octets
// that RFC 9654 recommends.
const NonceSize = 32

// Request is the DER of one OCSP request for one certificate. With a nonce,
// the nonce octets sit at NonceOffset and a sender overwrites them before
// each request.
type Request struct {
	Serial      *big.Int
	DER         []byte
	NonceOffset int // -1 without a nonce
}

type certID struct {
	HashAlgorithm  pkix.AlgorithmIdentifier
	IssuerNameHash []byte
	IssuerKeyHash  []byte
	SerialNumber   *big.Int
}

type singleRequest struct {
	CertID certID
}

type tbsRequest struct {
	RequestList []singleRequest
	Extensions  []pkix.Extension `asn1:"explicit,tag:2,optional"`
}

type ocspRequest struct {
	TBSRequest tbsRequest
}

// NewRequest builds a request with a SHA-1 CertID for cert under issuer,
// with a nonce extension when withNonce is set.
func NewRequest(cert, issuer *x509.Certificate, withNonce bool) (*Request, error) {
	plain, err := xocsp.CreateRequest(cert, issuer, &xocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return nil, fmt.Errorf("create OCSP request for serial %x: %w", cert.SerialNumber, err)
	}
	if !withNonce {
		return &Request{Serial: cert.SerialNumber, DER: plain, NonceOffset: -1}, nil
	}
	parsed, err := xocsp.ParseRequest(plain)
	if err != nil {
		return nil, fmt.Errorf("parse own OCSP request: %w", err)
	}
	marker := make([]byte, NonceSize)
	if _, err := rand.Read(marker); err != nil {
		return nil, fmt.Errorf("read nonce: %w", err)
	}
	value, err := asn1.Marshal(marker)
	if err != nil {
		return nil, err
	}
	der, err := asn1.Marshal(ocspRequest{TBSRequest: tbsRequest{
		RequestList: []singleRequest{{CertID: certID{
			HashAlgorithm:  pkix.AlgorithmIdentifier{Algorithm: oidSHA1, Parameters: asn1.NullRawValue},
			IssuerNameHash: parsed.IssuerNameHash,
			IssuerKeyHash:  parsed.IssuerKeyHash,
			SerialNumber:   parsed.SerialNumber,
		}}},
		Extensions: []pkix.Extension{{Id: oidNonce, Value: value}},
	}})
	if err != nil {
		return nil, fmt.Errorf("encode OCSP request with nonce: %w", err)
	}
	return &Request{Serial: cert.SerialNumber, DER: der, NonceOffset: bytes.Index(der, marker)}, nil
}

// Nonce returns the nonce octets of r's DER, or nil without a nonce.
func (r *Request) Nonce() []byte {
	if r.NonceOffset < 0 {
		return nil
	}
	return r.DER[r.NonceOffset : r.NonceOffset+NonceSize]
}

// GETPath returns the responder's path prefix, a slash and the URL-encoded
// base64 of der, as RFC 6960, appendix A.1 lays out a GET request.
func GETPath(prefix string, der []byte) string {
	return strings.TrimSuffix(prefix, "/") + "/" + url.PathEscape(base64.StdEncoding.EncodeToString(der))
}
