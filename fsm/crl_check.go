package fsm

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
)

// oidDeltaCRLIndicator is id-ce-deltaCRLIndicator (RFC 5280, 5.2.4).
var oidDeltaCRLIndicator = asn1.ObjectIdentifier{2, 5, 29, 27}

// checkCRL verifies that the DER is a CRL of ca, signed by ca, whose number,
// update times, entry count and delta indicator match the payload. Parsing
// and signature verification are deterministic, so every node reaches the
// same verdict.
func checkCRL(ca *CA, p *CRL) error {
	if !p.NextUpdate.After(p.ThisUpdate) {
		return Errorf(CodeInvalidArgument, "CRL of %s: nextUpdate %s is not after thisUpdate %s",
			p.CRLScope, p.NextUpdate, p.ThisUpdate)
	}
	if p.Delta != (p.Base != nil) {
		return Errorf(CodeInvalidArgument, "CRL of %s: a delta CRL needs a base, a complete CRL none",
			p.CRLScope)
	}

	rl, err := x509.ParseRevocationList(p.DER)
	if err != nil {
		return Errorf(CodeInvalidArgument, "CRL of %s: invalid DER: %v", p.CRLScope, err)
	}
	cert, err := ca.Certificate()
	if err != nil {
		return Errorf(CodeInternal, "%v", err)
	}
	if !bytes.Equal(rl.RawIssuer, cert.RawSubject) {
		return Errorf(CodeInvalidArgument,
			"CRL of %s: issuer name differs from the CA subject", p.CRLScope)
	}
	if err := rl.CheckSignatureFrom(cert); err != nil {
		return Errorf(CodeInvalidArgument, "CRL of %s: invalid signature: %v", p.CRLScope, err)
	}

	if rl.Number == nil || !rl.Number.IsUint64() || rl.Number.Uint64() != p.Number {
		return Errorf(CodeInvalidArgument, "CRL of %s: cRLNumber %v differs from payload number %d",
			p.CRLScope, rl.Number, p.Number)
	}
	if !rl.ThisUpdate.Equal(p.ThisUpdate) || !rl.NextUpdate.Equal(p.NextUpdate) {
		return Errorf(CodeInvalidArgument, "CRL of %s: update times differ from the payload",
			p.CRLScope)
	}
	if n := len(rl.RevokedCertificateEntries); n != p.Entries {
		return Errorf(CodeInvalidArgument, "CRL of %s lists %d entries, the payload states %d",
			p.CRLScope, n, p.Entries)
	}
	return checkDeltaIndicator(rl, p)
}

// checkDeltaIndicator requires a deltaCRLIndicator naming the base number
// in a delta CRL and none in a complete CRL.
func checkDeltaIndicator(rl *x509.RevocationList, p *CRL) error {
	var base *big.Int
	for _, ext := range rl.Extensions {
		if !ext.Id.Equal(oidDeltaCRLIndicator) {
			continue
		}
		base = new(big.Int)
		if rest, err := asn1.Unmarshal(ext.Value, &base); err != nil || len(rest) > 0 {
			return Errorf(CodeInvalidArgument, "CRL of %s: invalid deltaCRLIndicator", p.CRLScope)
		}
	}
	switch {
	case !p.Delta && base != nil:
		return Errorf(CodeInvalidArgument, "complete CRL of %s has a deltaCRLIndicator", p.CRLScope)
	case p.Delta && (base == nil || !base.IsUint64() || base.Uint64() != p.Base.Number):
		return Errorf(CodeInvalidArgument, "delta CRL of %s: deltaCRLIndicator %v, want base %d",
			p.CRLScope, base, p.Base.Number)
	case p.Delta && p.Base.Number >= p.Number:
		return Errorf(CodeInvalidArgument, "delta CRL of %s: number %d is not above its base %d",
			p.CRLScope, p.Number, p.Base.Number)
	}
	return nil
}
