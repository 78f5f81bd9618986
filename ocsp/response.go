package ocsp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // hashes of CertIDs and ResponderID.byKey
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
)

// The response is encoded here rather than by x/crypto/ocsp.CreateResponse,
// because CreateResponse (x/crypto v0.59.0) copies ExtraExtensions into
// singleExtensions, while RFC 6960, 4.4.1 puts the nonce in the
// responseExtensions of ResponseData, where OpenSSL looks for it.

var (
	oidOCSPBasic       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	hashAlgorithmOIDs  = map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA1:   {1, 3, 14, 3, 2, 26},
		crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
		crypto.SHA384: {2, 16, 840, 1, 101, 3, 4, 2, 2},
		crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
	}
	asn1Null = asn1.RawValue{Tag: asn1.TagNull}
)

// Context tags of the CertStatus CHOICE and of ResponderID.byKey.
const (
	tagGood    = 0
	tagRevoked = 1
	tagUnknown = 2
	tagByKey   = 2
)

type responseASN1 struct {
	Status   asn1.Enumerated
	Response responseBytes `asn1:"explicit,tag:0"`
}

type responseBytes struct {
	ResponseType asn1.ObjectIdentifier
	Response     []byte
}

type basicResponse struct {
	TBSResponseData    asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          asn1.BitString
	Certs              []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type responseData struct {
	ResponderID        asn1.RawValue
	ProducedAt         time.Time `asn1:"generalized"`
	Responses          []singleResponse
	ResponseExtensions []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type singleResponse struct {
	CertID     certID
	CertStatus asn1.RawValue
	ThisUpdate time.Time `asn1:"generalized"`
	NextUpdate time.Time `asn1:"generalized,explicit,tag:0"`
}

type certID struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	NameHash      []byte
	IssuerKeyHash []byte
	SerialNumber  *big.Int
}

// revokedInfo leaves revocationReason out for unspecified (0), as a CRL entry
// leaves out its reasonCode (RFC 5280, 5.3.1).
type revokedInfo struct {
	RevocationTime time.Time       `asn1:"generalized"`
	Reason         asn1.Enumerated `asn1:"explicit,tag:0,optional"`
}

// certStatus is the replicated status of one certificate.
type certStatus struct {
	status    int // xocsp.Good, xocsp.Revoked or xocsp.Unknown
	revokedAt time.Time
	reason    int
	// issuedAt is when a credential was issued, zero for SubCA certificates
	// and unknown serials.
	issuedAt time.Time
}

// responseTemplate is the content of one signed response.
type responseTemplate struct {
	issuer *x509.Certificate
	// responder is the certificate of the signing key, which names the
	// responder: the issuer itself or a designated responder certificate,
	// which the response then carries in its certs.
	responder              *x509.Certificate
	hash                   crypto.Hash // of the CertID
	serial                 *big.Int
	status                 certStatus
	producedAt, thisUpdate time.Time
	nextUpdate             time.Time
	nonce                  *pkix.Extension
}

// signResponse encodes and signs a successful BasicOCSPResponse. A
// designated responder's certificate goes into its certs.
func signResponse(tmpl *responseTemplate, signer crypto.Signer) ([]byte, error) {
	tbs, err := encodeResponseData(tmpl)
	if err != nil {
		return nil, err
	}
	hash, algorithm, err := signatureAlgorithm(signer.Public())
	if err != nil {
		return nil, err
	}

	h := hash.New()
	h.Write(tbs)
	signature, err := signer.Sign(rand.Reader, h.Sum(nil), hash)
	if err != nil {
		return nil, fmt.Errorf("sign OCSP response: %w", err)
	}

	basic := basicResponse{
		TBSResponseData:    asn1.RawValue{FullBytes: tbs},
		SignatureAlgorithm: algorithm,
		Signature:          asn1.BitString{Bytes: signature, BitLength: 8 * len(signature)},
	}
	if tmpl.responder != tmpl.issuer {
		basic.Certs = []asn1.RawValue{{FullBytes: tmpl.responder.Raw}}
	}
	basicDER, err := asn1.Marshal(basic)
	if err != nil {
		return nil, fmt.Errorf("encode BasicOCSPResponse: %w", err)
	}
	return asn1.Marshal(responseASN1{
		Status:   asn1.Enumerated(xocsp.Success),
		Response: responseBytes{ResponseType: oidOCSPBasic, Response: basicDER},
	})
}

func encodeResponseData(tmpl *responseTemplate) ([]byte, error) {
	id, err := newCertID(tmpl.issuer, tmpl.hash, tmpl.serial)
	if err != nil {
		return nil, err
	}
	status, err := encodeCertStatus(tmpl.status)
	if err != nil {
		return nil, err
	}
	responderID, err := byKeyResponderID(tmpl.responder)
	if err != nil {
		return nil, err
	}
	data := responseData{
		ResponderID: responderID,
		ProducedAt:  tmpl.producedAt.UTC(),
		Responses: []singleResponse{{
			CertID: *id, CertStatus: status,
			ThisUpdate: tmpl.thisUpdate.UTC(), NextUpdate: tmpl.nextUpdate.UTC(),
		}},
	}
	if tmpl.nonce != nil {
		data.ResponseExtensions = []pkix.Extension{*tmpl.nonce}
	}
	der, err := asn1.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encode ResponseData: %w", err)
	}
	return der, nil
}

// newCertID computes the CertID of serial under issuer with hash, with NULL
// parameters as x/crypto/ocsp and OpenSSL write them.
func newCertID(issuer *x509.Certificate, hash crypto.Hash, serial *big.Int) (*certID, error) {
	oid, ok := hashAlgorithmOIDs[hash]
	if !ok {
		return nil, fmt.Errorf("unsupported CertID hash algorithm %v", hash)
	}
	keyHash, err := issuerKeyHash(issuer, hash)
	if err != nil {
		return nil, err
	}

	h := hash.New()
	h.Write(issuer.RawSubject)
	return &certID{
		HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1Null},
		NameHash:      h.Sum(nil),
		IssuerKeyHash: keyHash,
		SerialNumber:  serial,
	}, nil
}

// issuerKeyHash hashes the subjectPublicKey BIT STRING of a certificate, as
// CertID and ResponderID.byKey do (RFC 6960, 4.1.1 and 4.2.1).
func issuerKeyHash(cert *x509.Certificate, hash crypto.Hash) ([]byte, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, fmt.Errorf("parse subject public key info of %s: %w", cert.Subject, err)
	}
	h := hash.New()
	h.Write(spki.PublicKey.RightAlign())
	return h.Sum(nil), nil
}

func encodeCertStatus(s certStatus) (asn1.RawValue, error) {
	switch s.status {
	case xocsp.Good:
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagGood}, nil
	case xocsp.Unknown:
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagUnknown}, nil
	case xocsp.Revoked:
		der, err := asn1.Marshal(revokedInfo{
			RevocationTime: s.revokedAt.UTC(),
			Reason:         asn1.Enumerated(s.reason),
		})
		if err != nil {
			return asn1.RawValue{}, fmt.Errorf("encode RevokedInfo: %w", err)
		}
		var seq asn1.RawValue
		if _, err := asn1.Unmarshal(der, &seq); err != nil {
			return asn1.RawValue{}, fmt.Errorf("encode RevokedInfo: %w", err)
		}
		// [1] IMPLICIT RevokedInfo keeps the SEQUENCE content under the new tag.
		return asn1.RawValue{
			Class: asn1.ClassContextSpecific, Tag: tagRevoked, IsCompound: true, Bytes: seq.Bytes,
		}, nil
	}
	return asn1.RawValue{}, fmt.Errorf("invalid certificate status %d", s.status)
}

// byKeyResponderID names the responder by the SHA-1 hash of its key.
func byKeyResponderID(responder *x509.Certificate) (asn1.RawValue, error) {
	keyHash, err := issuerKeyHash(responder, crypto.SHA1)
	if err != nil {
		return asn1.RawValue{}, err
	}
	octets, err := asn1.Marshal(keyHash)
	if err != nil {
		return asn1.RawValue{}, fmt.Errorf("encode ResponderID: %w", err)
	}
	return asn1.RawValue{
		Class: asn1.ClassContextSpecific, Tag: tagByKey, IsCompound: true, Bytes: octets,
	}, nil
}

// signatureAlgorithm picks the digest and AlgorithmIdentifier for a key:
// ECDSA with the hash that matches the curve, RSA with PKCS #1 v1.5 and
// SHA-256.
func signatureAlgorithm(pub crypto.PublicKey) (crypto.Hash, pkix.AlgorithmIdentifier, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return crypto.SHA256, pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256}, nil
		case elliptic.P384():
			return crypto.SHA384, pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA384}, nil
		case elliptic.P521():
			return crypto.SHA512, pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA512}, nil
		}
		return 0, pkix.AlgorithmIdentifier{},
			fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		algorithm := pkix.AlgorithmIdentifier{Algorithm: oidSHA256WithRSA, Parameters: asn1Null}
		return crypto.SHA256, algorithm, nil
	}
	return 0, pkix.AlgorithmIdentifier{}, errors.New("unsupported signing key type: want ECDSA or RSA")
}
