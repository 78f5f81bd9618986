package ca

import (
	"crypto/x509"
	"net"
	"net/url"
	"sort"
	"strings"

	"anchor/fsm"
)

// csrNames returns the subject alternative names a CSR requests, normalized
// (see fsm.NormalizeName), sorted and without duplicates, and its common
// name, which must repeat one of its DNS names or IP addresses. Whether the
// SubCA allows each name's type is checked later, against its policy.
func csrNames(csr *x509.CertificateRequest) (names []string, commonName string, err error) {
	seen := map[string]bool{}
	add := func(kind, raw string) error {
		n, err := fsm.NormalizeName(kind, raw)
		if err != nil {
			return err
		}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
		return nil
	}
	for _, d := range csr.DNSNames {
		if err := add(fsm.NameDNS, d); err != nil {
			return nil, "", err
		}
	}
	for _, ip := range csr.IPAddresses {
		if err := add(fsm.NameIP, ip.String()); err != nil {
			return nil, "", err
		}
	}
	for _, e := range csr.EmailAddresses {
		if err := add(fsm.NameEmail, e); err != nil {
			return nil, "", err
		}
	}
	for _, u := range csr.URIs {
		if err := add(fsm.NameURI, u.String()); err != nil {
			return nil, "", err
		}
	}
	if len(names) == 0 {
		return nil, "", fsm.Errorf(fsm.CodeInvalidArgument, "CSR has no DNS name or IP address")
	}
	sort.Strings(names)
	commonName, err = csrCommonName(csr.Subject.CommonName, seen)
	return names, commonName, err
}

// csrCommonName normalizes a CSR's common name and checks that it is one of
// the CSR's DNS names or IP addresses.
func csrCommonName(cn string, names map[string]bool) (string, error) {
	if cn == "" {
		return "", nil
	}
	kind := fsm.NameKind(strings.ToLower(cn))
	norm, err := fsm.NormalizeName(kind, cn)
	if err != nil || !names[norm] || (kind != fsm.NameDNS && kind != fsm.NameIP) {
		return "", fsm.Errorf(fsm.CodeInvalidArgument,
			"CSR common name %q is not one of its DNS names or IP addresses", cn)
	}
	return norm, nil
}

// setNames writes normalized names into the template's SANs.
func setNames(tmpl *x509.Certificate, names []string) {
	for _, n := range names {
		switch fsm.NameKind(n) {
		case fsm.NameIP:
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(n))
		case fsm.NameEmail:
			tmpl.EmailAddresses = append(tmpl.EmailAddresses, n)
		case fsm.NameURI:
			// The names come from fsm.NormalizeName, whose URIs parse.
			if u, err := url.Parse(n); err == nil {
				tmpl.URIs = append(tmpl.URIs, u)
			}
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
}

// leafCommonName applies the template's common name rule: the requested
// common name, else the first DNS name that fits the 64-character upper
// bound of X.520, else none.
func leafCommonName(rule, requested string, names []string) string {
	if rule == fsm.CommonNameOmit {
		return ""
	}
	if requested != "" && len(requested) <= 64 {
		return requested
	}
	for _, n := range names {
		if fsm.NameKind(n) == fsm.NameDNS && len(n) <= 64 {
			return n
		}
	}
	return ""
}
