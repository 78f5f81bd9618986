package crl

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The CRL is encoded here rather than by x509.CreateRevocationList, whose
// reflection-based encoding/asn1 took most of the time of a CRL with a
// million entries. The output is the same DER: TestEncodeTBS_MatchesX509
// compares the two byte for byte.

var (
	oidAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLNumber      = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidReasonCode     = asn1.ObjectIdentifier{2, 5, 29, 21}

	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidEd25519         = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// signatureAlgorithm is the CRL signature scheme of a CA key: the algorithm
// identifier written into the CRL, the hash given to the signer (0 for
// Ed25519, which signs the message itself), and the matching x509 constant.
// The choices match crypto/x509's for certificates, so a CA signs its CRLs
// as it signs its certificates.
type signatureAlgorithm struct {
	oid     asn1.ObjectIdentifier
	rsaNull bool // RSA identifiers carry NULL parameters (RFC 4055, 5)
	hash    crypto.Hash
	x509    x509.SignatureAlgorithm
}

func signatureAlgorithmFor(pub crypto.PublicKey) (signatureAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return signatureAlgorithm{oid: oidECDSAWithSHA256, hash: crypto.SHA256, x509: x509.ECDSAWithSHA256}, nil
		case elliptic.P384():
			return signatureAlgorithm{oid: oidECDSAWithSHA384, hash: crypto.SHA384, x509: x509.ECDSAWithSHA384}, nil
		case elliptic.P521():
			return signatureAlgorithm{oid: oidECDSAWithSHA512, hash: crypto.SHA512, x509: x509.ECDSAWithSHA512}, nil
		}
		return signatureAlgorithm{}, fmt.Errorf("unsupported elliptic curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		return signatureAlgorithm{oid: oidSHA256WithRSA, rsaNull: true, hash: crypto.SHA256, x509: x509.SHA256WithRSA}, nil
	case ed25519.PublicKey:
		return signatureAlgorithm{oid: oidEd25519, x509: x509.PureEd25519}, nil
	}
	return signatureAlgorithm{}, fmt.Errorf("unsupported CA key type %T", pub)
}

func (a signatureAlgorithm) marshal(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(a.oid)
		if a.rsaNull {
			b.AddASN1NULL()
		}
	})
}

// tbsFields is the content of a TBSCertList (RFC 5280, 5.1.2) other than
// the signature algorithm.
type tbsFields struct {
	issuer                 *x509.Certificate
	number                 *big.Int
	thisUpdate, nextUpdate time.Time
	entries                []x509.RevocationListEntry
	// extensions follow the authority key identifier and the CRL number.
	extensions []pkix.Extension
}

// encodeTBS returns the DER of the TBSCertList. Like
// x509.CreateRevocationList it omits revokedCertificates when there are no
// entries and writes a reasonCode extension only for a reason other than
// unspecified (RFC 5280, 5.3.1).
func encodeTBS(f *tbsFields, alg signatureAlgorithm) ([]byte, error) {
	if len(f.issuer.SubjectKeyId) == 0 {
		return nil, errors.New("issuer certificate is missing a subject key identifier")
	}
	if f.issuer.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, errors.New("issuer certificate is missing the cRLSign key usage")
	}
	if n := f.number.Bytes(); f.number.Sign() < 0 || len(n) > 20 || len(n) == 20 && n[0]&0x80 != 0 {
		return nil, errors.New("CRL number must be non-negative and at most 20 octets")
	}
	for i := range f.entries {
		if f.entries[i].SerialNumber == nil || f.entries[i].RevocationTime.IsZero() {
			return nil, fmt.Errorf("CRL entry %d is missing its serial number or revocation time", i)
		}
	}
	if f.nextUpdate.Before(f.thisUpdate) {
		return nil, errors.New("nextUpdate is before thisUpdate")
	}
	// An entry takes about 44 bytes; sizing the buffer once saves copying
	// a CRL of tens of megabytes as it grows.
	b := cryptobyte.NewBuilder(make([]byte, 0, 1024+len(f.issuer.RawSubject)+48*len(f.entries)))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1) // v2
		alg.marshal(b)
		b.AddBytes(f.issuer.RawSubject)
		addTime(b, f.thisUpdate)
		addTime(b, f.nextUpdate)
		if len(f.entries) > 0 {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for i := range f.entries {
					addEntry(b, &f.entries[i])
				}
			})
		}
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				addExtension(b, oidAuthorityKeyID, false, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						// keyIdentifier [0] IMPLICIT OCTET STRING
						b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) {
							b.AddBytes(f.issuer.SubjectKeyId)
						})
					})
				})
				addExtension(b, oidCRLNumber, false, func(b *cryptobyte.Builder) {
					b.AddASN1BigInt(f.number)
				})
				for _, e := range f.extensions {
					addExtension(b, e.Id, e.Critical, func(b *cryptobyte.Builder) {
						b.AddBytes(e.Value)
					})
				}
			})
		})
	})
	return b.Bytes()
}

// addEntry appends one revokedCertificates element. The reasonCode
// extension, when present, is the only entry extension.
func addEntry(b *cryptobyte.Builder, e *x509.RevocationListEntry) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(e.SerialNumber)
		addTime(b, e.RevocationTime)
		if e.ReasonCode == 0 {
			return
		}
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addExtension(b, oidReasonCode, false, func(b *cryptobyte.Builder) {
				b.AddASN1Enum(int64(e.ReasonCode))
			})
		})
	})
}

// addExtension appends an Extension whose extnValue contains the bytes that
// value adds.
func addExtension(b *cryptobyte.Builder, id asn1.ObjectIdentifier, critical bool,
	value cryptobyte.BuilderContinuation) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(id)
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1(cbasn1.OCTET_STRING, value)
	})
}

// addTime appends a Time in UTC: UTCTime through 2049 and GeneralizedTime
// from 2050 (RFC 5280, 5.1.2.4).
func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC()
	if y := t.Year(); y >= 1950 && y < 2050 {
		b.AddASN1UTCTime(t)
		return
	}
	b.AddASN1GeneralizedTime(t)
}

// signTBS signs the TBSCertList with the CA key, checks the signature
// against the key's public half, and returns the CertificateList.
func signTBS(tbs []byte, alg signatureAlgorithm, signer crypto.Signer) ([]byte, error) {
	digest := tbs
	if alg.hash != 0 {
		h := alg.hash.New()
		h.Write(tbs)
		digest = h.Sum(nil)
	}
	sig, err := signer.Sign(rand.Reader, digest, alg.hash)
	if err != nil {
		return nil, err
	}
	if err := checkSignature(alg, tbs, digest, sig, signer.Public()); err != nil {
		return nil, fmt.Errorf("the HSM returned a signature that does not verify: %w", err)
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, len(tbs)+len(sig)+64))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		alg.marshal(b)
		b.AddASN1BitString(sig)
	})
	return b.Bytes()
}

// checkSignature verifies sig over the TBSCertList with the public key,
// from the digest where the algorithm hashes first.
func checkSignature(alg signatureAlgorithm, tbs, digest, sig []byte, pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return errors.New("ECDSA verification failed")
		}
		return nil
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, alg.hash, digest, sig)
	case ed25519.PublicKey:
		if !ed25519.Verify(k, tbs, sig) {
			return errors.New("Ed25519 verification failed")
		}
		return nil
	}
	return fmt.Errorf("unsupported CA key type %T", pub)
}
