package fsm

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Policy is the template a SubCA imposes on its leaves. The CA package
// enforces every field at issuance and rejects a request that breaks one
// with an error naming the field by its JSON name ("key_types",
// "name_constraints.permitted_dns", ...). A root's Policy carries only the
// URLs written into the SubCA certificates it signs.
type Policy struct {
	// MaxValidity caps a leaf's lifetime, counted inclusively from notBefore
	// to notAfter as RFC 5280, 4.1.2.5 defines it; zero means 90 days.
	MaxValidity time.Duration `json:"max_validity,omitempty"`
	// KeyTypes lists the leaf key types allowed (see KeyType): "ecdsa-p256",
	// "ecdsa-p384", "rsa-N" for an N-bit modulus, "ed25519". Empty allows
	// ECDSA P-256 and P-384 and RSA of 2048 to 8192 bits in steps of 8;
	// Ed25519 is allowed only when listed.
	KeyTypes []string `json:"key_types,omitempty"`
	// KeyUsages lists the key usages a leaf may carry: KeyUsageDigitalSignature
	// and KeyUsageKeyEncipherment. A leaf gets those its key type can use
	// (key encipherment only for RSA). Empty allows both.
	KeyUsages []string `json:"key_usages,omitempty"`
	// ServerAuth and ClientAuth select the extended key usages of leaves and
	// of the SubCA certificate.
	ServerAuth bool `json:"server_auth"`
	ClientAuth bool `json:"client_auth"`
	// NameTypes lists the SAN types leaves may carry: NameDNS, NameIP,
	// NameEmail, NameURI. Empty allows DNS names and IP addresses.
	NameTypes []string `json:"name_types,omitempty"`
	// Subject holds the subject attributes copied into every leaf.
	Subject SubjectTemplate `json:"subject,omitzero"`
	// NameConstraints are written into the SubCA certificate as a critical
	// extension and checked against every leaf name.
	NameConstraints NameConstraints `json:"name_constraints,omitzero"`
	// OCSPURLs, CRLURLs and IssuerURLs are written into leaves.
	OCSPURLs   []string `json:"ocsp_urls,omitempty"`
	CRLURLs    []string `json:"crl_urls,omitempty"`
	IssuerURLs []string `json:"issuer_urls,omitempty"`
}

// Key usage names of Policy.KeyUsages.
const (
	KeyUsageDigitalSignature = "digital_signature"
	KeyUsageKeyEncipherment  = "key_encipherment"
)

// Common name rules of SubjectTemplate.CommonName.
const (
	// CommonNameFromSAN sets the CSR's common name, which must be one of its
	// DNS names or IP addresses, or else the first DNS name.
	CommonNameFromSAN = "san"
	// CommonNameOmit leaves the common name out; the SANs carry the names.
	CommonNameOmit = "omit"
)

// SubjectTemplate holds fixed subject attributes of a SubCA's leaves. The
// CSR's own subject attributes are ignored, except for the common name.
type SubjectTemplate struct {
	Organization       string `json:"o,omitempty"`
	OrganizationalUnit string `json:"ou,omitempty"`
	Country            string `json:"c,omitempty"` // ISO 3166-1 alpha-2
	Province           string `json:"st,omitempty"`
	Locality           string `json:"l,omitempty"`
	// CommonName is CommonNameFromSAN (also when empty) or CommonNameOmit.
	CommonName string `json:"cn,omitempty"`
}

// NameConstraints are the name constraints of a SubCA (RFC 5280, 4.2.1.10).
// A DNS or URI host constraint "example.com" covers that name and every
// name below it, ".example.com" only the names below it. An email constraint
// is a mailbox, a host, or ".host" for the hosts below it. IP constraints are
// CIDR prefixes.
type NameConstraints struct {
	PermittedDNS   []string `json:"permitted_dns,omitempty"`
	ExcludedDNS    []string `json:"excluded_dns,omitempty"`
	PermittedIP    []string `json:"permitted_ip,omitempty"`
	ExcludedIP     []string `json:"excluded_ip,omitempty"`
	PermittedEmail []string `json:"permitted_email,omitempty"`
	ExcludedEmail  []string `json:"excluded_email,omitempty"`
	PermittedURI   []string `json:"permitted_uri,omitempty"`
	ExcludedURI    []string `json:"excluded_uri,omitempty"`
}

// IsEmpty reports whether no constraint is set.
func (nc *NameConstraints) IsEmpty() bool {
	return len(nc.PermittedDNS)+len(nc.ExcludedDNS)+len(nc.PermittedIP)+len(nc.ExcludedIP)+
		len(nc.PermittedEmail)+len(nc.ExcludedEmail)+len(nc.PermittedURI)+len(nc.ExcludedURI) == 0
}

// AllowsNameType reports whether leaves may carry names of kind (NameDNS, ...).
func (p *Policy) AllowsNameType(kind string) bool {
	if len(p.NameTypes) == 0 {
		return kind == NameDNS || kind == NameIP
	}
	return slices.Contains(p.NameTypes, kind)
}

// AllowedNameTypes lists the name types the policy allows, for messages.
func (p *Policy) AllowedNameTypes() string {
	if len(p.NameTypes) == 0 {
		return NameDNS + ", " + NameIP
	}
	return strings.Join(p.NameTypes, ", ")
}

// CheckIdentifiersAllowed rejects identifiers that sub could never sign: a
// name type its policy does not allow, or a name outside its name
// constraints (NameConstraints.CheckIdentifier). Services and EAB keys are
// checked with it when they are created.
func CheckIdentifiersAllowed(ids []string, sub *CA) error {
	p := &sub.Policy
	for _, id := range ids {
		kind := IdentifierKind(id)
		if !p.AllowsNameType(kind) {
			return Errorf(CodeInvalidArgument,
				"identifier %q breaks rule name_types of SubCA %s: %s names are not allowed, allowed are %s",
				id, sub.ID, kind, p.AllowedNameTypes())
		}
		if v := p.NameConstraints.CheckIdentifier(id); v != nil {
			return Errorf(CodeInvalidArgument, "identifier %q breaks rule %s of SubCA %s: %s",
				id, v.Rule, sub.ID, v.Detail())
		}
	}
	return nil
}

// AllowsKeyType reports whether leaves may have keys of type typ (see KeyType).
func (p *Policy) AllowsKeyType(typ string) bool {
	if len(p.KeyTypes) > 0 {
		return slices.Contains(p.KeyTypes, typ)
	}
	if typ == KeyTypeP256 || typ == KeyTypeP384 {
		return true
	}
	bits, ok := rsaKeyBits(typ)
	return ok && bits >= 2048 && bits <= 8192 && bits%8 == 0
}

// AllowsKeyUsage reports whether leaves may carry the key usage name.
func (p *Policy) AllowsKeyUsage(name string) bool {
	return len(p.KeyUsages) == 0 || slices.Contains(p.KeyUsages, name)
}

// Validate checks a SubCA's policy before the SubCA is created. The error
// names the invalid field.
func (p *Policy) Validate() error {
	if p.MaxValidity < 0 {
		return policyFieldError("max_validity", "is negative (%s)", p.MaxValidity)
	}
	for _, typ := range p.KeyTypes {
		if !knownKeyType(typ) {
			return policyFieldError("key_types", "unknown key type %q: use ecdsa-p256, ecdsa-p384, "+
				"ed25519 or rsa-N with N from 2048 to 8192 in steps of 8", typ)
		}
	}
	for _, ku := range p.KeyUsages {
		if ku != KeyUsageDigitalSignature && ku != KeyUsageKeyEncipherment {
			return policyFieldError("key_usages", "unknown key usage %q: use %s or %s",
				ku, KeyUsageDigitalSignature, KeyUsageKeyEncipherment)
		}
	}
	for _, nt := range p.NameTypes {
		if nt != NameDNS && nt != NameIP && nt != NameEmail && nt != NameURI {
			return policyFieldError("name_types", "unknown name type %q: use dns, ip, email or uri", nt)
		}
	}
	if err := p.Subject.validate(); err != nil {
		return err
	}
	return p.NameConstraints.validate()
}

func policyFieldError(field, format string, args ...any) *Error {
	return Errorf(CodeInvalidArgument, "invalid SubCA policy: %s %s",
		field, fmt.Sprintf(format, args...))
}

var countryPattern = regexp.MustCompile(`^[A-Z]{2}$`)

// validate applies the subject rules of the CA/Browser Forum Baseline
// Requirements, 7.1.4.2, so that leaves pass their lints: an organization
// needs a country and a locality or province, and a unit needs an
// organization.
//
// NOTE: the country is checked for two upper-case letters, not against the
// ISO 3166-1 list, so an unassigned code passes here.
func (s *SubjectTemplate) validate() error {
	fields := []struct{ name, value string }{
		{"subject.o", s.Organization}, {"subject.ou", s.OrganizationalUnit},
		{"subject.st", s.Province}, {"subject.l", s.Locality},
	}
	for _, f := range fields {
		if err := validateAttribute(f.name, f.value); err != nil {
			return err
		}
	}
	switch {
	case s.Country != "" && !countryPattern.MatchString(s.Country):
		return policyFieldError("subject.c", "%q is not an ISO 3166-1 alpha-2 code", s.Country)
	case s.Organization != "" && s.Country == "":
		return policyFieldError("subject.c", "is required with subject.o")
	case s.Organization != "" && s.Province == "" && s.Locality == "":
		return policyFieldError("subject.l", "or subject.st is required with subject.o")
	case s.OrganizationalUnit != "" && s.Organization == "":
		return policyFieldError("subject.o", "is required with subject.ou")
	case s.CommonName != "" && s.CommonName != CommonNameFromSAN && s.CommonName != CommonNameOmit:
		return policyFieldError("subject.cn", "unknown rule %q: use %s or %s",
			s.CommonName, CommonNameFromSAN, CommonNameOmit)
	}
	return nil
}

// validateAttribute rejects values that X.520 upper bounds or the Baseline
// Requirements' ban on metadata-only values (such as "-" or ".") would break.
func validateAttribute(field, value string) error {
	if value == "" {
		return nil
	}
	if len(value) > 64 || !utf8Printable(value) || strings.TrimSpace(value) != value {
		return policyFieldError(field, "%q must be 1 to 64 printable characters without "+
			"leading or trailing spaces", value)
	}
	if strings.IndexFunc(value, func(r rune) bool {
		return unicode.IsLetter(r) || unicode.IsDigit(r)
	}) < 0 {
		return policyFieldError(field, "%q has no letter or digit", value)
	}
	return nil
}

func utf8Printable(s string) bool {
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func (nc *NameConstraints) validate() error {
	lists := []struct {
		field string
		items []string
		check func(string) bool
	}{
		{"name_constraints.permitted_dns", nc.PermittedDNS, validDomainConstraint},
		{"name_constraints.excluded_dns", nc.ExcludedDNS, validDomainConstraint},
		{"name_constraints.permitted_ip", nc.PermittedIP, validPrefixConstraint},
		{"name_constraints.excluded_ip", nc.ExcludedIP, validPrefixConstraint},
		{"name_constraints.permitted_email", nc.PermittedEmail, validEmailConstraint},
		{"name_constraints.excluded_email", nc.ExcludedEmail, validEmailConstraint},
		{"name_constraints.permitted_uri", nc.PermittedURI, validDomainConstraint},
		{"name_constraints.excluded_uri", nc.ExcludedURI, validDomainConstraint},
	}
	for _, l := range lists {
		for _, item := range l.items {
			if !l.check(item) {
				return policyFieldError(l.field, "entry %q is invalid: use a lower-case domain, "+
					"a domain with a leading dot, a canonical CIDR prefix or (email) a mailbox", item)
			}
		}
	}
	return nil
}

func validDomainConstraint(c string) bool {
	d := strings.TrimPrefix(c, ".")
	return !strings.HasPrefix(d, "*.") && ValidateDNSName(d) == nil && strings.ToLower(d) == d
}

func validPrefixConstraint(c string) bool {
	p, err := netip.ParsePrefix(c)
	return err == nil && p.Masked() == p && !p.Addr().Is4In6()
}

func validEmailConstraint(c string) bool {
	if strings.Contains(c, "@") {
		norm, err := normalizeEmail(c)
		return err == nil && norm == c
	}
	return validDomainConstraint(c)
}

// Key types that KeyType returns, besides "rsa-N".
const (
	KeyTypeP256    = "ecdsa-p256"
	KeyTypeP384    = "ecdsa-p384"
	KeyTypeEd25519 = "ed25519"
)

func knownKeyType(typ string) bool {
	if typ == KeyTypeP256 || typ == KeyTypeP384 || typ == KeyTypeEd25519 {
		return true
	}
	bits, ok := rsaKeyBits(typ)
	return ok && bits >= 2048 && bits <= 8192 && bits%8 == 0
}

func rsaKeyBits(typ string) (int, bool) {
	s, ok := strings.CutPrefix(typ, "rsa-")
	if !ok {
		return 0, false
	}
	bits, err := strconv.Atoi(s)
	return bits, err == nil
}
