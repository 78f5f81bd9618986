package ca

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"anchor/fsm"
)

// DefaultLeafValidity is the leaf lifetime when a SubCA policy sets none.
const DefaultLeafValidity = 90 * 24 * time.Hour

// backdate moves a default notBefore into the past, so that relying parties
// whose clocks run a little behind accept a new certificate.
const backdate = time.Minute

// leafRequest holds the inputs of a leaf certificate: the key, names and
// common name of a CSR, or for a renewal those of the stored certificate.
type leafRequest struct {
	publicKey  crypto.PublicKey
	spki       []byte // DER SubjectPublicKeyInfo of publicKey
	names      []string
	commonName string // empty or one of names
	// notBefore and notAfter are the requested validity; zero means default.
	notBefore, notAfter time.Time
}

// ruleError reports a request that breaks a rule of a SubCA's policy. The
// message names the rule by its policy field and the value that broke it.
func ruleError(sub *fsm.CA, rule, value, format string, args ...any) error {
	return fsm.Errorf(fsm.CodeInvalidArgument, "%s breaks rule %s of SubCA %s: %s",
		value, rule, sub.ID, fmt.Sprintf(format, args...))
}

// checkTemplate checks a leaf request against the SubCA's policy: key type,
// key usages, name types and name constraints. It returns the key usages
// the leaf gets.
func checkTemplate(sub *fsm.CA, leaf *leafRequest) (x509.KeyUsage, error) {
	p := &sub.Policy
	typ, err := fsm.KeyType(leaf.publicKey)
	if err != nil {
		return 0, err
	}
	if err := checkRSAExponent(leaf.publicKey); err != nil {
		return 0, err
	}
	if !p.AllowsKeyType(typ) {
		return 0, ruleError(sub, "key_types", "key type "+typ, "allowed are %s", allowedKeyTypes(p))
	}
	usage, err := leafKeyUsage(sub, leaf.publicKey, typ)
	if err != nil {
		return 0, err
	}
	for _, n := range leaf.names {
		kind := fsm.NameKind(n)
		if !p.AllowsNameType(kind) {
			return 0, ruleError(sub, "name_types", fmt.Sprintf("%s name %q", kind, n),
				"allowed are %s", p.AllowedNameTypes())
		}
		if v := p.NameConstraints.Check(n); v != nil {
			return 0, ruleError(sub, v.Rule, fmt.Sprintf("name %q", n), "%s", v.Detail())
		}
	}
	return usage, nil
}

// checkRSAExponent rejects RSA keys whose public exponent is even or below
// 65537, which the CA/Browser Forum Baseline Requirements, 6.1.6 rule out.
func checkRSAExponent(pub crypto.PublicKey) error {
	k, ok := pub.(*rsa.PublicKey)
	if !ok || k.E >= 65537 && k.E%2 == 1 {
		return nil
	}
	return fsm.Errorf(fsm.CodeInvalidArgument,
		"weak RSA key: public exponent %d; use an odd exponent of at least 65537", k.E)
}

func allowedKeyTypes(p *fsm.Policy) string {
	if len(p.KeyTypes) == 0 {
		return "ecdsa-p256, ecdsa-p384 and rsa-2048 to rsa-8192 in steps of 8 bits"
	}
	return strings.Join(p.KeyTypes, ", ")
}

// leafKeyUsage returns the key usages of a leaf: those the policy allows
// and the key type can use. Key encipherment applies to RSA keys only
// (RFC 5480, 3 and RFC 8410, 5 rule it out for ECDSA and Ed25519 keys).
func leafKeyUsage(sub *fsm.CA, pub crypto.PublicKey, typ string) (x509.KeyUsage, error) {
	var usage x509.KeyUsage
	if sub.Policy.AllowsKeyUsage(fsm.KeyUsageDigitalSignature) {
		usage |= x509.KeyUsageDigitalSignature
	}
	_, isRSA := pub.(*rsa.PublicKey)
	if isRSA && sub.Policy.AllowsKeyUsage(fsm.KeyUsageKeyEncipherment) {
		usage |= x509.KeyUsageKeyEncipherment
	}
	if usage == 0 {
		return 0, ruleError(sub, "key_usages", "key type "+typ,
			"none of the allowed key usages (%s) applies to this key type",
			strings.Join(sub.Policy.KeyUsages, ", "))
	}
	return usage, nil
}

// leafValidity returns the validity period of a leaf. Without a requested
// period, the leaf starts a minute ago and lasts the policy's maximum,
// ending no later than the SubCA certificate. A requested period must fit
// the policy's maximum and the SubCA certificate's own period.
//
// RFC 5280, 4.1.2.5 counts both ends of the period, so a maximum of D
// allows notAfter = notBefore + D - 1s.
func leafValidity(sub *fsm.CA, subCert *x509.Certificate, leaf *leafRequest,
	now time.Time) (time.Time, time.Time, error) {
	maxValidity := sub.Policy.MaxValidity
	if maxValidity <= 0 {
		maxValidity = DefaultLeafValidity
	}
	notBefore := leaf.notBefore.UTC().Truncate(time.Second)
	if notBefore.IsZero() {
		notBefore = now.Add(-backdate).Truncate(time.Second)
		if notBefore.Before(subCert.NotBefore) {
			// The node that created the SubCA may have a clock ahead of this one.
			notBefore = subCert.NotBefore.UTC()
		}
	}
	notAfter := leaf.notAfter.UTC().Truncate(time.Second)
	if notAfter.IsZero() {
		notAfter = notBefore.Add(maxValidity - time.Second)
		if notAfter.After(subCert.NotAfter) {
			notAfter = subCert.NotAfter
		}
		if !notAfter.After(now) {
			return time.Time{}, time.Time{}, fsm.Errorf(fsm.CodeFailedPrecondition,
				"SubCA %s has expired", sub.ID)
		}
	}
	return notBefore, notAfter, checkValidity(sub, subCert, notBefore, notAfter, maxValidity, now)
}

func checkValidity(sub *fsm.CA, subCert *x509.Certificate, notBefore, notAfter time.Time,
	maxValidity time.Duration, now time.Time) error {
	period := fmt.Sprintf("validity %s to %s",
		notBefore.Format(time.RFC3339), notAfter.Format(time.RFC3339))
	switch {
	case !notAfter.After(notBefore):
		return fsm.Errorf(fsm.CodeInvalidArgument, "invalid %s: notAfter is not after notBefore", period)
	case !notAfter.After(now):
		return fsm.Errorf(fsm.CodeInvalidArgument, "invalid %s: notAfter is in the past", period)
	case notAfter.Sub(notBefore)+time.Second > maxValidity:
		return ruleError(sub, "max_validity", period, "longer than %s", maxValidity)
	case notBefore.Before(subCert.NotBefore) || notAfter.After(subCert.NotAfter):
		return ruleError(sub, "validity", period, "outside the SubCA certificate's validity %s to %s",
			subCert.NotBefore.UTC().Format(time.RFC3339), subCert.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkService checks that a service may request the names and uses this
// SubCA in the chain's realm.
func checkService(svc *fsm.Service, chain *fsm.Chain, sub *fsm.CA, names []string) error {
	binding := svc.Realm(chain.Realm)
	if binding == nil || binding.ChainID != chain.ID {
		return fsm.Errorf(fsm.CodeInvalidArgument, "service %s does not use chain %s", svc.ID, chain.ID)
	}
	if binding.SubCAID != sub.ID {
		return fsm.Errorf(fsm.CodeInvalidArgument, "service %s uses SubCA %s in realm %s, not %s",
			svc.ID, binding.SubCAID, chain.Realm, sub.ID)
	}
	for _, n := range names {
		if !svc.Covers(n) {
			return fsm.Errorf(fsm.CodeInvalidArgument,
				"name %q breaks the identifiers of service %s: not covered by %s",
				n, svc.ID, strings.Join(svc.Identifiers, ", "))
		}
	}
	return nil
}
