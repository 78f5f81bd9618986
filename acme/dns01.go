package acme

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"anchor/fsm"
)

// dns01 looks up the TXT records of _acme-challenge.{domain} and expects one
// to be the base64url SHA-256 digest of the key authorization (RFC 8555,
// 8.4). A wildcard authorization names its base domain, so the same record
// serves both.
func (v *validator) dns01(ctx context.Context, id fsm.ACMEIdentifier, keyAuth string) *problem {
	if id.Type != fsm.ACMEIdentifierDNS {
		return malformed("dns-01 cannot validate a %s identifier", id.Type)
	}
	name := "_acme-challenge." + id.Value
	records, err := v.resolver.LookupTXT(ctx, name)
	if err != nil {
		return newProblem(probDNS, http.StatusBadRequest, "TXT lookup of %s failed: %v", name, err)
	}
	want := dns01Digest(keyAuth)
	for _, r := range records {
		if r == want {
			return nil
		}
	}
	return newProblem(probIncorrectResponse, http.StatusForbidden,
		"none of the %d TXT records at %s is the key authorization digest", len(records), name)
}

func dns01Digest(keyAuth string) string {
	sum := sha256.Sum256([]byte(keyAuth))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
