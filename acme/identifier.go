package acme

import (
	"net/http"
	"net/netip"
	"strings"

	"anchor/fsm"
)

// maxIdentifiers bounds the identifiers of one order.
const maxIdentifiers = 100

// normalizeIdentifiers checks newOrder identifiers and returns them in
// canonical form: DNS names lower-case, IP addresses in their shortest text
// form, duplicates removed, the client's order kept.
func normalizeIdentifiers(in []fsm.ACMEIdentifier) ([]fsm.ACMEIdentifier, error) {
	if len(in) == 0 {
		return nil, malformed("an order needs at least one identifier")
	}
	if len(in) > maxIdentifiers {
		return nil, newProblem(probRejectedIdentifier, http.StatusBadRequest,
			"an order may have at most %d identifiers, not %d", maxIdentifiers, len(in))
	}
	seen := map[fsm.ACMEIdentifier]bool{}
	var out []fsm.ACMEIdentifier
	for _, id := range in {
		norm, err := normalizeIdentifier(id)
		if err != nil {
			return nil, err
		}
		if !seen[norm] {
			seen[norm] = true
			out = append(out, norm)
		}
	}
	return out, nil
}

func normalizeIdentifier(id fsm.ACMEIdentifier) (fsm.ACMEIdentifier, error) {
	switch id.Type {
	case fsm.ACMEIdentifierDNS:
		name := strings.ToLower(id.Value)
		if err := checkDNSName(name); err != nil {
			return id, err
		}
		return fsm.ACMEIdentifier{Type: fsm.ACMEIdentifierDNS, Value: name}, nil
	case fsm.ACMEIdentifierIP:
		addr, err := netip.ParseAddr(id.Value)
		if err != nil || addr.Zone() != "" {
			return id, newProblem(probRejectedIdentifier, http.StatusBadRequest,
				"%q is not an IP address", id.Value)
		}
		return fsm.ACMEIdentifier{Type: fsm.ACMEIdentifierIP, Value: addr.Unmap().String()}, nil
	default:
		return id, newProblem(probUnsupportedIdentifier, http.StatusBadRequest,
			"identifier type %q is not supported: use \"dns\" or \"ip\"", id.Type)
	}
}

// checkDNSName accepts a lower-case DNS name of LDH labels (RFC 1035 with
// RFC 5890 A-labels), with at most one leading "*." wildcard label whose
// base has two or more labels.
func checkDNSName(name string) error {
	reject := func(why string) error {
		return newProblem(probRejectedIdentifier, http.StatusBadRequest,
			"DNS identifier %q is not allowed: %s", name, why)
	}
	base, wildcard := strings.CutPrefix(name, "*.")
	if len(name) > 253 || base == "" {
		return reject("it must have 1 to 253 characters")
	}
	if _, err := netip.ParseAddr(base); err == nil {
		return reject("an IP address needs the \"ip\" identifier type")
	}
	labels := strings.Split(base, ".")
	if wildcard && len(labels) < 2 {
		return reject("a wildcard needs a base domain of two or more labels")
	}
	for _, l := range labels {
		if err := checkLabel(l); err != "" {
			return reject(err)
		}
	}
	return nil
}

func checkLabel(l string) string {
	if len(l) == 0 || len(l) > 63 {
		return "each label must have 1 to 63 characters"
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return "a label must not start or end with a hyphen"
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "labels may contain only letters, digits and hyphens"
		}
	}
	return ""
}

// authzIdentifier is the identifier an authorization proves: the base
// domain of a wildcard.
func authzIdentifier(id fsm.ACMEIdentifier) (fsm.ACMEIdentifier, bool) {
	if base, ok := strings.CutPrefix(id.Value, "*."); ok && id.Type == fsm.ACMEIdentifierDNS {
		return fsm.ACMEIdentifier{Type: fsm.ACMEIdentifierDNS, Value: base}, true
	}
	return id, false
}

// inScope reports whether an EAB key's identifier scope pre-authorizes id.
// A scope entry is a DNS name (exact), "*.domain" (every name below domain,
// wildcards included), an IP address (exact) or an IP prefix in CIDR form.
func inScope(scope []string, id fsm.ACMEIdentifier) bool {
	for _, entry := range scope {
		entry = strings.ToLower(strings.TrimSpace(entry))
		if scopeEntryCovers(entry, id) {
			return true
		}
	}
	return false
}

func scopeEntryCovers(entry string, id fsm.ACMEIdentifier) bool {
	if id.Type == fsm.ACMEIdentifierIP {
		addr, err := netip.ParseAddr(id.Value)
		if err != nil {
			return false
		}
		if p, err := netip.ParsePrefix(entry); err == nil {
			return p.Contains(addr)
		}
		e, err := netip.ParseAddr(entry)
		return err == nil && e.Unmap() == addr
	}
	if domain, ok := strings.CutPrefix(entry, "*."); ok {
		return strings.HasSuffix(id.Value, "."+domain)
	}
	return entry == id.Value
}
