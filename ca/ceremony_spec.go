package ca

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"anchor/fsm"
	"anchor/hsm"
)

// CeremonySpec is the declarative input of a key ceremony: the chain to create, its
// AnchorCA root and its SubCAs. LoadCeremonySpec reads it from a JSON file and rejects
// unknown keys. docs/examples/ceremony.json is an example.
type CeremonySpec struct {
	// Org and Realm name the organization and realm; the ceremony creates them when
	// they do not exist. Chain names the new chain. All three are lower-case DNS
	// labels.
	Org   string `json:"org"`
	Realm string `json:"realm"`
	Chain string `json:"chain"`
	// Root describes the AnchorCA root.
	Root CeremonyRoot `json:"root"`
	// SubCAs lists the SubCAs, at least one. The first becomes the chain's default
	// SubCA, which signs ACME orders that name no SubCA.
	SubCAs []CeremonySubCA `json:"subcas"`
}

// CeremonyRoot describes the self-signed AnchorCA root of a ceremony.
type CeremonyRoot struct {
	// Algorithm of the root key, such as "ecdsa-p384" (see hsm.Algorithm). Required.
	Algorithm hsm.Algorithm `json:"algorithm"`
	// Subject of the root certificate; common_name is required.
	Subject CeremonySubject `json:"subject"`
	// ValidityDays is the root certificate's lifetime in days, 1 to 36500. Required.
	ValidityDays int `json:"validity_days"`
}

// CeremonySubCA describes one SubCA of a ceremony.
type CeremonySubCA struct {
	// Name is the SubCA's name in its chain, a lower-case DNS label. Required.
	Name string `json:"name"`
	// Algorithm of the SubCA key, such as "ecdsa-p256". Required.
	Algorithm hsm.Algorithm `json:"algorithm"`
	// Subject of the SubCA certificate; common_name is required.
	Subject CeremonySubject `json:"subject"`
	// ValidityDays is the SubCA certificate's lifetime in days, 1 to 36500. The
	// certificate ends no later than the root's. Required.
	ValidityDays int `json:"validity_days"`
	// LeafValidityDays caps the lifetime of leaf certificates in days; zero means
	// the default of 90 days.
	LeafValidityDays int `json:"leaf_validity_days,omitempty"`
	// KeyTypes lists the leaf key types allowed (see fsm.Policy.KeyTypes).
	KeyTypes []string `json:"key_types,omitempty"`
	// ServerAuth and ClientAuth select the extended key usages of the SubCA and its
	// leaves. Neither set means server_auth.
	ServerAuth bool `json:"server_auth,omitempty"`
	ClientAuth bool `json:"client_auth,omitempty"`
	// NameConstraints are written into the SubCA certificate (RFC 5280, 4.2.1.10).
	NameConstraints fsm.NameConstraints `json:"name_constraints,omitzero"`
}

// CeremonySubject is the subject of a CA certificate.
type CeremonySubject struct {
	CommonName         string `json:"common_name"`
	Organization       string `json:"organization,omitempty"`
	OrganizationalUnit string `json:"organizational_unit,omitempty"`
	// Country is an ISO 3166-1 alpha-2 code such as "DE".
	Country string `json:"country,omitempty"`
}

// maxCeremonyValidityDays bounds validity_days at about one hundred years.
const maxCeremonyValidityDays = 36500

// LoadCeremonySpec reads and validates a ceremony specification (JSON). Unknown keys,
// trailing data and invalid values are errors that name the field.
func LoadCeremonySpec(path string) (*CeremonySpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ceremony spec: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var spec CeremonySpec
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("ceremony spec %s: %w", path, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("ceremony spec %s: unexpected data after the JSON object", path)
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("ceremony spec %s: %w", path, err)
	}
	return &spec, nil
}

// Validate checks every field of the specification.
func (s *CeremonySpec) Validate() error {
	names := []struct{ kind, name string }{
		{"organization", s.Org}, {"realm", s.Realm}, {"chain", s.Chain},
	}
	for _, n := range names {
		if err := fsm.ValidateName(n.kind, n.name); err != nil {
			return err
		}
	}
	if err := validateCA("root", s.Root.Algorithm, s.Root.Subject, s.Root.ValidityDays); err != nil {
		return err
	}
	if len(s.SubCAs) == 0 {
		return errors.New("subcas is empty: list at least one SubCA")
	}
	seen := map[string]bool{}
	for i, sub := range s.SubCAs {
		field := fmt.Sprintf("subcas[%d]", i)
		if err := fsm.ValidateName("subca", sub.Name); err != nil {
			return fmt.Errorf("%s.name: %w", field, err)
		}
		if sub.Name == "root" || seen[sub.Name] {
			return fmt.Errorf("%s.name %q is used twice or is the root's name", field, sub.Name)
		}
		seen[sub.Name] = true
		if err := validateCA(field, sub.Algorithm, sub.Subject, sub.ValidityDays); err != nil {
			return err
		}
		if sub.LeafValidityDays < 0 || sub.LeafValidityDays > sub.ValidityDays {
			return fmt.Errorf("%s.leaf_validity_days is %d: use 0 (90 days) up to validity_days",
				field, sub.LeafValidityDays)
		}
		policy := sub.policy()
		if err := policy.Validate(); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
	}
	return nil
}

func validateCA(field string, alg hsm.Algorithm, subject CeremonySubject, days int) error {
	switch alg {
	case hsm.ECDSAP256, hsm.ECDSAP384, hsm.RSA2048, hsm.RSA3072, hsm.RSA4096, hsm.Ed25519:
	default:
		return fmt.Errorf("%s.algorithm %q is not supported: use ecdsa-p256, ecdsa-p384, "+
			"rsa-2048, rsa-3072, rsa-4096 or ed25519", field, alg)
	}
	if subject.CommonName == "" || len(subject.CommonName) > 64 {
		return fmt.Errorf("%s.subject.common_name must have 1 to 64 characters", field)
	}
	if subject.Country != "" && len(subject.Country) != 2 {
		return fmt.Errorf("%s.subject.country %q is not a two-letter ISO 3166-1 code",
			field, subject.Country)
	}
	if days < 1 || days > maxCeremonyValidityDays {
		return fmt.Errorf("%s.validity_days is %d: use 1 to %d", field, days,
			maxCeremonyValidityDays)
	}
	return nil
}

// policy returns the SubCA's leaf policy, without the cluster URLs.
func (s *CeremonySubCA) policy() fsm.Policy {
	return fsm.Policy{
		MaxValidity:     days(s.LeafValidityDays),
		KeyTypes:        s.KeyTypes,
		ServerAuth:      s.ServerAuth,
		ClientAuth:      s.ClientAuth,
		NameConstraints: s.NameConstraints,
	}
}

func (s CeremonySubject) name() pkix.Name {
	name := pkix.Name{CommonName: s.CommonName}
	if s.Organization != "" {
		name.Organization = []string{s.Organization}
	}
	if s.OrganizationalUnit != "" {
		name.OrganizationalUnit = []string{s.OrganizationalUnit}
	}
	if s.Country != "" {
		name.Country = []string{s.Country}
	}
	return name
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }
