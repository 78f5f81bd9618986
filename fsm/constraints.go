package fsm

import (
	"net/netip"
	"strings"
)

// Violation names the name constraint that a name breaks: Rule is the
// policy field ("name_constraints.excluded_dns") and Constraint the entry,
// or the permitted entries joined by commas when no permitted entry matched.
type Violation struct {
	Rule       string
	Constraint string
}

// Detail describes the violation for an error message.
func (v *Violation) Detail() string {
	if strings.Contains(v.Rule, ".excluded_") {
		return "inside the excluded subtree " + v.Constraint
	}
	return "outside the permitted subtrees " + v.Constraint
}

// Check returns the constraint that a normalized name of any kind breaks, or
// nil when the name satisfies every constraint of its kind. Excluded
// subtrees win over permitted ones, and a kind with no permitted subtree is
// unrestricted, as RFC 5280, 4.2.1.10 specifies.
func (nc *NameConstraints) Check(name string) *Violation {
	switch NameKind(name) {
	case NameDNS:
		return checkSubtrees("dns", name, nc.PermittedDNS, nc.ExcludedDNS, dnsMatches, dnsWildcardHits)
	case NameIP:
		return checkSubtrees("ip", name, nc.PermittedIP, nc.ExcludedIP, ipMatches, nil)
	case NameEmail:
		return checkSubtrees("email", name, nc.PermittedEmail, nc.ExcludedEmail, emailMatches, nil)
	default:
		return nc.checkURI(name)
	}
}

// checkURI applies the URI host constraints. A URI whose host is an IP
// address cannot be matched against host constraints, so any URI constraint
// rejects it, as Go's crypto/x509 verifier does.
func (nc *NameConstraints) checkURI(name string) *Violation {
	if _, err := netip.ParseAddr(URIHost(name)); err == nil {
		if len(nc.ExcludedURI) > 0 {
			return &Violation{Rule: "name_constraints.excluded_uri", Constraint: join(nc.ExcludedURI)}
		}
		if len(nc.PermittedURI) > 0 {
			return &Violation{Rule: "name_constraints.permitted_uri", Constraint: join(nc.PermittedURI)}
		}
	}
	return checkSubtrees("uri", name, nc.PermittedURI, nc.ExcludedURI, uriMatches, nil)
}

// CheckIdentifier is Check for an identifier pattern (see IdentifierCovers).
// An IP prefix must lie within the constraints with every address in it. A
// "*." pattern is checked as a certificate wildcard: an excluded
// subtree one label below its base rejects it, and one deeper does not,
// although the pattern covers names there.
//
// NOTE: so a pre-authorized "*.example.com" may cover an excluded
// "a.secret.example.com". Issuance checks every name again (Check), so no
// such certificate is signed.
func (nc *NameConstraints) CheckIdentifier(pattern string) *Violation {
	p, err := netip.ParsePrefix(pattern)
	if err != nil {
		return nc.Check(pattern)
	}
	for _, e := range nc.ExcludedIP {
		if q, err := netip.ParsePrefix(e); err == nil && q.Overlaps(p) {
			return &Violation{Rule: "name_constraints.excluded_ip", Constraint: e}
		}
	}
	if len(nc.PermittedIP) == 0 {
		return nil
	}
	for _, e := range nc.PermittedIP {
		if q, err := netip.ParsePrefix(e); err == nil && q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return nil
		}
	}
	return &Violation{Rule: "name_constraints.permitted_ip", Constraint: join(nc.PermittedIP)}
}

func checkSubtrees(kind, name string, permitted, excluded []string,
	matches, extraExcluded func(name, constraint string) bool) *Violation {
	for _, c := range excluded {
		if matches(name, c) || extraExcluded != nil && extraExcluded(name, c) {
			return &Violation{Rule: "name_constraints.excluded_" + kind, Constraint: c}
		}
	}
	if len(permitted) == 0 {
		return nil
	}
	for _, c := range permitted {
		if matches(name, c) {
			return nil
		}
	}
	return &Violation{Rule: "name_constraints.permitted_" + kind, Constraint: join(permitted)}
}

func join(constraints []string) string { return strings.Join(constraints, ",") }

// dnsMatches applies a DNS constraint to a name, treating a wildcard label
// as an ordinary label: "*.example.com" lies within "example.com".
func dnsMatches(name, c string) bool {
	if strings.HasPrefix(c, ".") {
		return strings.HasSuffix(name, c)
	}
	return name == c || strings.HasSuffix(name, "."+c)
}

// dnsWildcardHits reports whether a wildcard name covers an excluded name
// one label below its base: "*.example.com" would be valid for the excluded
// "secret.example.com", so it is rejected too.
func dnsWildcardHits(name, c string) bool {
	base, ok := strings.CutPrefix(name, "*.")
	if !ok {
		return false
	}
	label, rest, found := strings.Cut(strings.TrimPrefix(c, "."), ".")
	return found && label != "" && rest == base
}

func ipMatches(name, c string) bool {
	p, err := netip.ParsePrefix(c)
	if err != nil {
		return false
	}
	addr, err := netip.ParseAddr(name)
	return err == nil && p.Contains(addr)
}

func emailMatches(name, c string) bool {
	if strings.Contains(c, "@") {
		return name == c
	}
	_, domain, _ := strings.Cut(name, "@")
	if strings.HasPrefix(c, ".") {
		return strings.HasSuffix(domain, c)
	}
	return domain == c
}

func uriMatches(name, c string) bool {
	host := URIHost(name)
	if strings.HasPrefix(c, ".") {
		return strings.HasSuffix(host, c)
	}
	return host == c
}
