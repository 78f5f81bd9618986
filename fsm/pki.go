package fsm

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// Buckets of the PKI hierarchy.
const (
	bucketOrgs        = "organizations"
	bucketRealms      = "realms"
	bucketChains      = "chains"
	bucketCAs         = "cas"
	bucketCAByKeyHash = "ca_by_key_hash"
)

// Command types of the PKI hierarchy.
const (
	CmdCreateOrganization CommandType = "organization.create"
	CmdCreateRealm        CommandType = "realm.create"
	CmdCreateChain        CommandType = "chain.create"
	CmdCreateSubCA        CommandType = "subca.create"
)

var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateName checks a name of an organization, realm, chain or SubCA. Names
// appear in URLs, so they are lower-case DNS labels.
func ValidateName(kind, name string) error {
	if !namePattern.MatchString(name) {
		return Errorf(CodeInvalidArgument,
			"invalid %s name %q: use 1 to 63 lower-case letters, digits and inner hyphens", kind, name)
	}
	return nil
}

// Organization groups realms and members.
type Organization struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Realm is a workspace inside an organization, such as an environment.
type Realm struct {
	Org       string    `json:"org"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// ChainID returns the identifier of a chain, "org/realm/chain".
func ChainID(org, realm, chain string) string { return org + "/" + realm + "/" + chain }

// Chain is one X.509 hierarchy: a self-signed AnchorCA root and its SubCAs.
type Chain struct {
	ID        string    `json:"id"`
	Org       string    `json:"org"`
	Realm     string    `json:"realm"`
	Name      string    `json:"name"`
	RootCAID  string    `json:"root_ca_id"`
	SubCAIDs  []string  `json:"subca_ids"`
	CreatedAt time.Time `json:"created_at"`
	// DefaultSubCAID is the SubCA that signs ACME orders of this chain.
	DefaultSubCAID string `json:"default_subca_id"`
}

// CA kinds.
const (
	CAKindRoot = "root"
	CAKindSub  = "subca"
)

// CA is an AnchorCA root or a SubCA of a chain.
type CA struct {
	ID      string `json:"id"` // chain ID + "/" + name
	ChainID string `json:"chain_id"`
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	// KeyID names the CA's private key in every node's HSM.
	KeyID    string `json:"key_id"`
	CertDER  []byte `json:"cert_der"`
	IssuerID string `json:"issuer_id,omitempty"` // empty for a root
	Policy   Policy `json:"policy"`
}

// Certificate parses the CA certificate.
func (c *CA) Certificate() (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(c.CertDER)
	if err != nil {
		return nil, fmt.Errorf("parse certificate of CA %s: %w", c.ID, err)
	}
	return cert, nil
}

// KeyHashes returns the SHA-1 and SHA-256 hashes of a certificate's
// subjectPublicKey bits, as OCSP CertIDs carry them (RFC 6960, 4.1.1).
func KeyHashes(cert *x509.Certificate) (sha1Hex, sha256Hex string, err error) {
	bits, err := SubjectPublicKeyBits(cert.RawSubjectPublicKeyInfo)
	if err != nil {
		return "", "", err
	}
	h1 := sha1.Sum(bits)
	h2 := sha256.Sum256(bits)
	return hex.EncodeToString(h1[:]), hex.EncodeToString(h2[:]), nil
}

// CreateOrganization is the payload of CmdCreateOrganization.
type CreateOrganization struct {
	Name string `json:"name"`
}

// CreateRealm is the payload of CmdCreateRealm.
type CreateRealm struct {
	Org  string `json:"org"`
	Name string `json:"name"`
}

// CreateChain is the payload of CmdCreateChain. It carries the chain's root
// and first SubCA, whose keys already exist in the proposer's HSM.
type CreateChain struct {
	Org   string `json:"org"`
	Realm string `json:"realm"`
	Name  string `json:"name"`
	Root  CA     `json:"root"`
	SubCA CA     `json:"subca"`
}

// CreateSubCA is the payload of CmdCreateSubCA. The SubCA certificate must
// be signed by the chain's root, with path length 0 and the name
// constraints of its policy.
type CreateSubCA struct {
	SubCA CA `json:"subca"`
	// MakeDefault makes the new SubCA the chain's default SubCA.
	MakeDefault bool `json:"make_default,omitempty"`
}

func init() {
	register(CmdCreateOrganization, applyCreateOrganization)
	register(CmdCreateRealm, applyCreateRealm)
	register(CmdCreateChain, applyCreateChain)
	register(CmdCreateSubCA, applyCreateSubCA)
}

func applyCreateOrganization(tx *Tx, cmd *Command) (any, error) {
	var p CreateOrganization
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if err := ValidateName("organization", p.Name); err != nil {
		return nil, err
	}
	if tx.has(bucketOrgs, p.Name) {
		return nil, Errorf(CodeAlreadyExists, "organization %q already exists", p.Name)
	}
	org := Organization{Name: p.Name, CreatedAt: cmd.Time}
	return org, tx.put(bucketOrgs, p.Name, org)
}

func applyCreateRealm(tx *Tx, cmd *Command) (any, error) {
	var p CreateRealm
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if err := ValidateName("realm", p.Name); err != nil {
		return nil, err
	}
	if !tx.has(bucketOrgs, p.Org) {
		return nil, Errorf(CodeNotFound, "organization %q not found", p.Org)
	}
	key := p.Org + "/" + p.Name
	if tx.has(bucketRealms, key) {
		return nil, Errorf(CodeAlreadyExists, "realm %q already exists in organization %q", p.Name, p.Org)
	}
	realm := Realm{Org: p.Org, Name: p.Name, CreatedAt: cmd.Time}
	return realm, tx.put(bucketRealms, key, realm)
}

func applyCreateChain(tx *Tx, cmd *Command) (any, error) {
	var p CreateChain
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if err := ValidateName("chain", p.Name); err != nil {
		return nil, err
	}
	if !tx.has(bucketRealms, p.Org+"/"+p.Realm) {
		return nil, Errorf(CodeNotFound, "realm %q not found in organization %q", p.Realm, p.Org)
	}
	id := ChainID(p.Org, p.Realm, p.Name)
	if tx.has(bucketChains, id) {
		return nil, Errorf(CodeAlreadyExists, "chain %q already exists in realm %q", p.Name, p.Realm)
	}
	p.Root.ChainID, p.SubCA.ChainID = id, id
	p.Root.Kind, p.SubCA.Kind = CAKindRoot, CAKindSub
	p.Root.ID = id + "/" + p.Root.Name
	p.SubCA.ID = id + "/" + p.SubCA.Name
	p.SubCA.IssuerID = p.Root.ID
	if err := checkSubCAPolicy(&p.SubCA); err != nil {
		return nil, err
	}
	if err := putCA(tx, &p.Root, cmd.Time); err != nil {
		return nil, err
	}
	if err := putCA(tx, &p.SubCA, cmd.Time); err != nil {
		return nil, err
	}
	chain := Chain{
		ID: id, Org: p.Org, Realm: p.Realm, Name: p.Name,
		RootCAID: p.Root.ID, SubCAIDs: []string{p.SubCA.ID}, DefaultSubCAID: p.SubCA.ID,
		CreatedAt: cmd.Time,
	}
	return chain, tx.put(bucketChains, id, chain)
}

func applyCreateSubCA(tx *Tx, cmd *Command) (any, error) {
	var p CreateSubCA
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if err := ValidateName("subca", p.SubCA.Name); err != nil {
		return nil, err
	}
	var chain Chain
	ok, err := tx.get(bucketChains, p.SubCA.ChainID, &chain)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "chain %q not found", p.SubCA.ChainID)
	}
	p.SubCA.Kind = CAKindSub
	p.SubCA.ID = chain.ID + "/" + p.SubCA.Name
	p.SubCA.IssuerID = chain.RootCAID
	if err := checkSubCAPolicy(&p.SubCA); err != nil {
		return nil, err
	}
	if err := checkSignedByRoot(tx, &chain, &p.SubCA); err != nil {
		return nil, err
	}
	if err := putCA(tx, &p.SubCA, cmd.Time); err != nil {
		return nil, err
	}
	chain.SubCAIDs = append(chain.SubCAIDs, p.SubCA.ID)
	if p.MakeDefault {
		chain.DefaultSubCAID = p.SubCA.ID
	}
	return p.SubCA, tx.put(bucketChains, chain.ID, chain)
}

// putCA stores a CA, its key hashes for OCSP and its key pair record, which
// references the CA key in the nodes' HSMs.
func putCA(tx *Tx, ca *CA, now time.Time) error {
	if tx.has(bucketCAs, ca.ID) {
		return Errorf(CodeAlreadyExists, "CA %q already exists", ca.ID)
	}
	cert, err := x509.ParseCertificate(ca.CertDER)
	if err != nil {
		return Errorf(CodeInvalidArgument, "CA %q: invalid certificate: %v", ca.ID, err)
	}
	h1, h256, err := KeyHashes(cert)
	if err != nil {
		return Errorf(CodeInvalidArgument, "CA %q: %v", ca.ID, err)
	}
	if err := tx.putRaw(bucketCAByKeyHash, h1, []byte(ca.ID)); err != nil {
		return err
	}
	if err := tx.putRaw(bucketCAByKeyHash, h256, []byte(ca.ID)); err != nil {
		return err
	}
	if _, err := putKeyPair(tx, cert.RawSubjectPublicKeyInfo, ca.KeyID, now); err != nil {
		return err
	}
	return tx.put(bucketCAs, ca.ID, ca)
}

// Organization returns the organization with the given name.
func (t *Tx) Organization(name string) (*Organization, error) {
	var o Organization
	ok, err := t.get(bucketOrgs, name, &o)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "organization %q not found", name)
	}
	return &o, nil
}

// Organizations lists every organization.
func (t *Tx) Organizations() ([]Organization, error) { return list[Organization](t, bucketOrgs, "") }

// Realm returns a realm of an organization.
func (t *Tx) Realm(org, name string) (*Realm, error) {
	var r Realm
	ok, err := t.get(bucketRealms, org+"/"+name, &r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "realm %q not found in organization %q", name, org)
	}
	return &r, nil
}

// Realms lists the realms of an organization.
func (t *Tx) Realms(org string) ([]Realm, error) { return list[Realm](t, bucketRealms, org+"/") }

// Chain returns the chain with the given ID ("org/realm/chain").
func (t *Tx) Chain(id string) (*Chain, error) {
	var c Chain
	ok, err := t.get(bucketChains, id, &c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "chain %q not found", id)
	}
	return &c, nil
}

// Chains lists the chains whose ID starts with prefix ("" for all).
func (t *Tx) Chains(prefix string) ([]Chain, error) { return list[Chain](t, bucketChains, prefix) }

// CA returns the CA with the given ID.
func (t *Tx) CA(id string) (*CA, error) {
	var c CA
	ok, err := t.get(bucketCAs, id, &c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "CA %q not found", id)
	}
	return &c, nil
}

// CAs lists every CA.
func (t *Tx) CAs() ([]CA, error) { return list[CA](t, bucketCAs, "") }

// chainSubCA returns the SubCA subCAID of chain chainID.
func (t *Tx) chainSubCA(chainID, subCAID string) (*CA, error) {
	ca, err := t.CA(subCAID)
	if err != nil {
		return nil, err
	}
	if ca.Kind != CAKindSub || ca.ChainID != chainID {
		return nil, Errorf(CodeInvalidArgument, "CA %q is not a SubCA of chain %q", subCAID, chainID)
	}
	return ca, nil
}

// CAByKeyHash finds the CA whose public key hashes (SHA-1 or SHA-256, hex) to
// keyHash, as an OCSP CertID names its issuer.
func (t *Tx) CAByKeyHash(keyHash string) (*CA, error) {
	id := t.getRaw(bucketCAByKeyHash, keyHash)
	if id == nil {
		return nil, Errorf(CodeNotFound, "no CA with key hash %s", keyHash)
	}
	return t.CA(string(id))
}
