package api

import (
	"math/big"
	"strings"

	"anchor/fsm"
	"anchor/hsm"
)

// Limits of list calls.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// checkName validates a required name of an organization, realm, chain,
// SubCA or service, the field that carries it named in the error.
func checkName(field, kind, name string) error {
	if name == "" {
		return invalid("%s is required", field)
	}
	if err := fsm.ValidateName(kind, name); err != nil {
		return invalid("%s: %v", field, err)
	}
	return nil
}

// checkNames validates pairs of field name and value, in order: "org",
// "realm", "chain" and the like, each of the matching kind.
func checkNames(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		field := pairs[i]
		if err := checkName(field, kindOf(field), pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func kindOf(field string) string {
	switch field {
	case "org":
		return "organization"
	}
	return field
}

// checkOptionalName validates a name that may be empty.
func checkOptionalName(field, name string) error {
	if name == "" {
		return nil
	}
	return checkName(field, kindOf(field), name)
}

// pageSize returns the page size of a list request from its field.
func pageSize(field string, requested int32) (int, error) {
	switch {
	case requested < 0:
		return 0, invalid("%s %d is negative", field, requested)
	case requested == 0:
		return defaultPageSize, nil
	case requested > maxPageSize:
		return 0, invalid("%s %d is above the maximum of %d", field, requested, maxPageSize)
	}
	return int(requested), nil
}

// normalizeSerial returns a serial in the form the state stores it
// (fsm.SerialKey): hex digits, with or without colons, lower-cased and
// without leading zeros.
func normalizeSerial(serial string) (string, error) {
	s := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(serial), ":", ""))
	s = strings.TrimPrefix(s, "0x")
	n, ok := new(big.Int).SetString(s, 16)
	if s == "" || !ok || n.Sign() <= 0 {
		return "", invalid("invalid serial %q: use a positive hexadecimal number, "+
			"with or without colons", serial)
	}
	return fsm.SerialKey(n), nil
}

// checkLeafReason accepts the CRLReason codes (RFC 5280, 5.3.1) that the
// credential.revoke command accepts: 0 to 10, except the unused 7.
func checkLeafReason(reason int32) error {
	if reason < 0 || reason > 10 || reason == 7 {
		return invalid("invalid revocation reason code %d: use 0 to 10, except 7", reason)
	}
	return nil
}

// checkCAReason accepts the CRLReason codes that can revoke a SubCA: 0 to
// 5, 9 and 10. certificateHold (6) is left out because nothing releases a
// hold, and removeFromCRL (8) belongs only in delta CRLs.
func checkCAReason(reason int32) error {
	switch reason {
	case 0, 1, 2, 3, 4, 5, 9, 10:
		return nil
	}
	return invalid("invalid reason code %d for a SubCA revocation: use 0 to 5, 9 or 10", reason)
}

var algorithms = []hsm.Algorithm{
	hsm.ECDSAP256, hsm.ECDSAP384, hsm.RSA2048, hsm.RSA3072, hsm.RSA4096, hsm.Ed25519,
}

// checkAlgorithm accepts an empty algorithm (the default) or one the HSM
// package generates.
func checkAlgorithm(field, alg string) error {
	if alg == "" {
		return nil
	}
	for _, a := range algorithms {
		if string(a) == alg {
			return nil
		}
	}
	return invalid("%s: unknown algorithm %q: use one of %v", field, alg, algorithms)
}

// normalizeIdentifiers checks and normalizes identifier patterns (see
// fsm.IdentifierCovers), naming the field in the error.
func normalizeIdentifiers(field string, in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, id := range in {
		n, err := fsm.NormalizeIdentifier(id)
		if err != nil {
			return nil, invalid("%s: %v", field, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// checkCertificateID accepts the form of fsm.Certificate IDs: 1 to 64
// lower-case hex digits.
func checkCertificateID(id string) error {
	if id == "" {
		return invalid("id is required")
	}
	if len(id) > 64 || strings.Trim(id, "0123456789abcdef") != "" {
		return invalid("invalid certificate id %q: use the hex id that listings show", id)
	}
	return nil
}
