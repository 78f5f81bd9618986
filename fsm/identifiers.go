package fsm

import (
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Kinds of subject alternative names (RFC 5280, 4.2.1.6) that leaves may
// carry. Policy.NameTypes and error messages use these words.
const (
	NameDNS   = "dns"
	NameIP    = "ip"
	NameEmail = "email"
	NameURI   = "uri"
)

// NameKind classifies a normalized name as Certificate.Names stores it: an IP
// address, a URI (it has a scheme, so it contains ':'), an email address
// (it contains '@') or a DNS name.
func NameKind(name string) string {
	if _, err := netip.ParseAddr(name); err == nil {
		return NameIP
	}
	if strings.Contains(name, ":") {
		return NameURI
	}
	if strings.Contains(name, "@") {
		return NameEmail
	}
	return NameDNS
}

// NormalizeName checks a name of the given kind and returns the form that
// certificates carry. DNS names and email addresses are lower-cased, and
// DNS names lose a trailing dot. IP addresses get their canonical text,
// with IPv4-mapped IPv6 addresses as IPv4. URIs get a lower-case scheme
// and host.
//
// NOTE: the local part of an email address is lower-cased too. RFC 5321
// lets a mail server treat it as case-sensitive, but SANs are kept in lower
// case so that names compare byte for byte.
func NormalizeName(kind, name string) (string, error) {
	switch kind {
	case NameDNS:
		name = strings.ToLower(strings.TrimSuffix(name, "."))
		return name, ValidateDNSName(name)
	case NameIP:
		addr, err := netip.ParseAddr(name)
		if err != nil || addr.Zone() != "" {
			return "", Errorf(CodeInvalidArgument, "invalid IP address %q", name)
		}
		return addr.Unmap().String(), nil
	case NameEmail:
		return normalizeEmail(name)
	case NameURI:
		return normalizeURI(name)
	}
	return "", Errorf(CodeInvalidArgument, "unknown name type %q", kind)
}

// ValidateDNSName checks a lower-case DNS name as RFC 1035 labels of letters,
// digits and inner hyphens, with an optional leading "*." wildcard label.
func ValidateDNSName(name string) error {
	labels := strings.TrimPrefix(name, "*.")
	if len(name) > 253 || labels == "" {
		return Errorf(CodeInvalidArgument, "invalid DNS name %q", name)
	}
	for _, l := range strings.Split(labels, ".") {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return Errorf(CodeInvalidArgument, "invalid DNS name %q", name)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return Errorf(CodeInvalidArgument, "invalid DNS name %q: character %q", name, c)
			}
		}
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return Errorf(CodeInvalidArgument, "IP address %q given as a DNS name", name)
	}
	return nil
}

func normalizeEmail(addr string) (string, error) {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at > 64 || len(addr) > 254 {
		return "", Errorf(CodeInvalidArgument, "invalid email address %q", addr)
	}
	local, domain := addr[:at], strings.ToLower(addr[at+1:])
	for _, c := range local {
		// Printable ASCII without the characters that need quoting (RFC 5322, 3.2.3).
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`"(),:;<>@[\]`, c) {
			return "", Errorf(CodeInvalidArgument, "invalid email address %q: character %q", addr, c)
		}
	}
	if strings.HasPrefix(domain, "*.") {
		return "", Errorf(CodeInvalidArgument, "invalid email address %q: wildcard domain", addr)
	}
	if err := ValidateDNSName(domain); err != nil {
		return "", Errorf(CodeInvalidArgument, "invalid email address %q: %v", addr, err)
	}
	return strings.ToLower(local) + "@" + domain, nil
}

func normalizeURI(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || !utf8.ValidString(raw) {
		return "", Errorf(CodeInvalidArgument,
			"invalid URI %q: use an absolute URI with a host and no user information", raw)
	}
	host := strings.ToLower(u.Hostname())
	if _, err := netip.ParseAddr(host); err != nil {
		if err := ValidateDNSName(host); err != nil || strings.HasPrefix(host, "*.") {
			return "", Errorf(CodeInvalidArgument, "invalid URI %q: invalid host %q", raw, host)
		}
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	return u.String(), nil
}

// URIHost returns the host of a normalized URI name, without a port.
func URIHost(name string) string {
	u, err := url.Parse(name)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// IdentifierCovers reports whether an identifier pattern covers a name. A
// pattern is a name, "*." and a domain (every name below that domain, at any
// depth), or an IP prefix in CIDR notation. The rules match the
// pre-authorization scope of EAB keys, so a service's identifiers and its EAB
// keys' scope read the same way.
func IdentifierCovers(pattern, name string) bool {
	if domain, ok := strings.CutPrefix(pattern, "*."); ok {
		return NameKind(name) == NameDNS && strings.HasSuffix(name, "."+domain)
	}
	if p, err := netip.ParsePrefix(pattern); err == nil {
		addr, err := netip.ParseAddr(name)
		return err == nil && p.Contains(addr.Unmap())
	}
	return pattern == name
}

// IdentifierKind returns the name kind of an identifier pattern: NameIP for
// an IP prefix, otherwise the kind of the name.
func IdentifierKind(pattern string) string {
	if _, err := netip.ParsePrefix(pattern); err == nil {
		return NameIP
	}
	return NameKind(pattern)
}

// NormalizeIdentifier checks an identifier pattern (see IdentifierCovers)
// and returns it in normalized form.
func NormalizeIdentifier(pattern string) (string, error) {
	if strings.Contains(pattern, "/") && !strings.Contains(pattern, "://") {
		p, err := netip.ParsePrefix(pattern)
		if err != nil {
			return "", Errorf(CodeInvalidArgument, "invalid IP prefix %q", pattern)
		}
		return p.Masked().String(), nil
	}
	return NormalizeName(NameKind(pattern), pattern)
}
