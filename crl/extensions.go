package crl

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"

	"anchor/fsm"
)

// Extension OIDs of RFC 5280.
var (
	oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidDeltaCRLIndicator        = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidFreshestCRL              = asn1.ObjectIdentifier{2, 5, 29, 46}
)

// issuingDistributionPoint is the extension value (RFC 5280, 5.2.5). The
// ASN.1 module uses implicit tags, and the CHOICE DistributionPointName is
// tagged explicitly, which gives [0] { [0] { GeneralName... } } for fullName.
type issuingDistributionPoint struct {
	DistributionPoint     distributionPointName `asn1:"optional,tag:0"`
	OnlyContainsUserCerts bool                  `asn1:"optional,tag:1"`
	OnlyContainsCACerts   bool                  `asn1:"optional,tag:2"`
}

// distributionPoint is one element of CRLDistributionPoints, the syntax of
// the freshest CRL extension (RFC 5280, 4.2.1.13 and 5.2.6).
type distributionPoint struct {
	DistributionPoint distributionPointName `asn1:"optional,tag:0"`
}

type distributionPointName struct {
	FullName []asn1.RawValue `asn1:"optional,tag:0"`
}

// uriTag is the context tag of uniformResourceIdentifier in GeneralName.
const uriTag = 6

func uriNames(urls []string) []asn1.RawValue {
	names := make([]asn1.RawValue, 0, len(urls))
	for _, u := range urls {
		names = append(names,
			asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: uriTag, Bytes: []byte(u)})
	}
	return names
}

// idpExtension builds the critical issuing distribution point of a scope.
// A complete CRL and its delta carry the same bytes, because OpenSSL
// compares them before it combines the two.
//
// A shard CRL names the URLs of its shard, the CRL distribution points of
// the leaves it covers. A SubCA's full CRL and a root CRL leave the
// distributionPoint out, which RFC 5280, 5.2.5 allows for a CRL that lists
// every revoked certificate of its kind. OpenSSL matches a CRL without one
// against any certificate, and reports "different CRL scope" when the names
// differ. That happens to a full CRL that names its own URL, checked
// against a leaf that names its shard's CRL. It also happens to the
// self-signed root, which has no CRL distribution point and which OpenSSL
// 3.0 with -crl_check_all (and nginx with ssl_crl) checks against the
// root CRL.
func idpExtension(ca *fsm.CA, scope fsm.CRLScope) (pkix.Extension, error) {
	var idp issuingDistributionPoint
	if ca.Kind == fsm.CAKindRoot {
		idp.OnlyContainsCACerts = true
	} else {
		idp.OnlyContainsUserCerts = true
		if scope.Sharded {
			idp.DistributionPoint.FullName = uriNames(scopeURLs(ca, scope))
		}
	}
	value, err := asn1.Marshal(idp)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("encode issuing distribution point of %s: %w", scope, err)
	}
	return pkix.Extension{Id: oidIssuingDistributionPoint, Critical: true, Value: value}, nil
}

// OIDFreshestCRL identifies the freshest CRL extension (RFC 5280, 4.2.1.15).
var OIDFreshestCRL = oidFreshestCRL

// FreshestCRLExtension returns the non-critical freshest CRL extension
// (RFC 5280, 4.2.1.15 and 5.2.6) naming the delta CRL at urls. The
// Publisher puts it in complete CRLs; the ca package adds it to a leaf with
// DeltaURLs of the leaf's CRL distribution points.
func FreshestCRLExtension(urls []string) (pkix.Extension, error) {
	value, err := asn1.Marshal([]distributionPoint{{
		DistributionPoint: distributionPointName{FullName: uriNames(urls)},
	}})
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("encode freshest CRL extension: %w", err)
	}
	return pkix.Extension{Id: oidFreshestCRL, Value: value}, nil
}

// deltaIndicatorExtension is the critical delta CRL indicator naming the
// cRLNumber of the base CRL (RFC 5280, 5.2.4).
func deltaIndicatorExtension(baseNumber uint64) (pkix.Extension, error) {
	value, err := asn1.Marshal(new(big.Int).SetUint64(baseNumber))
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("encode delta CRL indicator: %w", err)
	}
	return pkix.Extension{Id: oidDeltaCRLIndicator, Critical: true, Value: value}, nil
}
