package ca

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"anchor/fsm"
)

// ServiceRequest describes a new service of an organization.
type ServiceRequest struct {
	Org  string
	Name string
	// Identifiers are the names the service may request: DNS names, "*."
	// and a domain for every name below it, IP addresses or CIDR prefixes,
	// email addresses and URIs. Each must fit the policy of the SubCA the
	// service uses in every realm.
	Identifiers []string
	// PreAuthorize lets the service's ACME accounts skip challenges for its
	// identifiers.
	PreAuthorize bool
	Realms       []ServiceRealmRequest
}

// ServiceRealmRequest chooses the chain and SubCA of a service in a realm.
type ServiceRealmRequest struct {
	Realm string
	Chain string // chain name in the realm
	SubCA string // SubCA name in the chain; empty means the chain's default
}

// CreateService creates a service with one EAB key per realm and returns
// the keys with their HMAC keys, which the caller hands to the service's
// ACME clients. The keys are replicated like every EAB key, so any node can
// verify an account binding.
func CreateService(ctx context.Context, apply Applier,
	req ServiceRequest) (*fsm.CreatedService, error) {
	p := fsm.CreateService{
		Org: req.Org, Name: req.Name, Identifiers: req.Identifiers, PreAuthorize: req.PreAuthorize,
	}
	for _, r := range req.Realms {
		keyID, hmacKey, err := newEABKey()
		if err != nil {
			return nil, err
		}
		p.Realms = append(p.Realms, fsm.CreateServiceRealm{
			Realm: r.Realm, Chain: r.Chain, SubCA: r.SubCA, EABKeyID: keyID, EABHMACKey: hmacKey,
		})
	}
	var out fsm.CreatedService
	if err := applyDecode(ctx, apply, fsm.MustCommand(fsm.CmdCreateService, p), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// newEABKey returns a random key ID and a 256-bit HMAC key.
func newEABKey() (string, []byte, error) {
	id := make([]byte, 12)
	hmacKey := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return "", nil, fmt.Errorf("read EAB key ID randomness: %w", err)
	}
	if _, err := rand.Read(hmacKey); err != nil {
		return "", nil, fmt.Errorf("read EAB HMAC key randomness: %w", err)
	}
	return "kid-" + hex.EncodeToString(id), hmacKey, nil
}
