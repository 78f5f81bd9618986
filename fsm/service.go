package fsm

import (
	"slices"
	"time"
)

const bucketServices = "services"

// CmdCreateService creates a service with its EAB keys.
const CmdCreateService CommandType = "service.create"

// Service is an application of an organization that obtains certificates,
// possibly in several realms. In each realm it uses one chain and one SubCA,
// and its ACME clients authenticate with the EAB keys created for it there.
type Service struct {
	ID   string `json:"id"` // "org/name"
	Org  string `json:"org"`
	Name string `json:"name"`
	// Identifiers are the names the service may request (see
	// IdentifierCovers), normalized and sorted.
	Identifiers []string       `json:"identifiers"`
	Realms      []ServiceRealm `json:"realms"`
	CreatedAt   time.Time      `json:"created_at"`
}

// ServiceRealm is the chain and SubCA a service uses in one realm.
type ServiceRealm struct {
	Realm     string   `json:"realm"`
	ChainID   string   `json:"chain_id"`
	SubCAID   string   `json:"subca_id"`
	EABKeyIDs []string `json:"eab_key_ids"`
}

// ServiceID returns the identifier of a service, "org/name".
func ServiceID(org, name string) string { return org + "/" + name }

// Covers reports whether the service may request name.
func (s *Service) Covers(name string) bool {
	for _, pattern := range s.Identifiers {
		if IdentifierCovers(pattern, name) {
			return true
		}
	}
	return false
}

// Realm returns the service's binding in a realm, or nil.
func (s *Service) Realm(realm string) *ServiceRealm {
	for i := range s.Realms {
		if s.Realms[i].Realm == realm {
			return &s.Realms[i]
		}
	}
	return nil
}

// CreateService is the payload of CmdCreateService.
type CreateService struct {
	Org         string   `json:"org"`
	Name        string   `json:"name"`
	Identifiers []string `json:"identifiers"`
	// PreAuthorize writes the identifiers into the EAB keys' scope, so the
	// ACME server creates their authorizations valid without challenges.
	PreAuthorize bool                 `json:"pre_authorize,omitempty"`
	Realms       []CreateServiceRealm `json:"realms"`
}

// CreateServiceRealm chooses a service's chain and SubCA in one realm and
// carries the EAB key that the proposer generated for it.
type CreateServiceRealm struct {
	Realm string `json:"realm"`
	Chain string `json:"chain"` // chain name in the realm
	// SubCA is the SubCA name in the chain; empty means the chain's default.
	SubCA      string `json:"subca,omitempty"`
	EABKeyID   string `json:"eab_key_id"`
	EABHMACKey []byte `json:"eab_hmac_key"`
}

// CreatedService is the result of CmdCreateService: the service and its EAB
// keys, HMAC keys included, for the proposer to hand to the service.
type CreatedService struct {
	Service Service  `json:"service"`
	EABKeys []EABKey `json:"eab_keys"`
}

func init() { register(CmdCreateService, applyCreateService) }

func applyCreateService(tx *Tx, cmd *Command) (any, error) {
	var p CreateService
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if err := ValidateName("service", p.Name); err != nil {
		return nil, err
	}
	if !tx.has(bucketOrgs, p.Org) {
		return nil, Errorf(CodeNotFound, "organization %q not found", p.Org)
	}
	svc := Service{ID: ServiceID(p.Org, p.Name), Org: p.Org, Name: p.Name, CreatedAt: cmd.Time}
	if tx.has(bucketServices, svc.ID) {
		return nil, Errorf(CodeAlreadyExists, "service %q already exists", svc.ID)
	}
	ids, err := normalizeIdentifiers(p.Identifiers)
	if err != nil {
		return nil, err
	}
	svc.Identifiers = ids
	if len(p.Realms) == 0 {
		return nil, Errorf(CodeInvalidArgument, "service %q needs at least one realm", svc.ID)
	}
	out := CreatedService{}
	for _, r := range p.Realms {
		binding, key, err := bindServiceRealm(tx, &svc, &r, p.PreAuthorize, cmd.Time)
		if err != nil {
			return nil, err
		}
		svc.Realms = append(svc.Realms, *binding)
		out.EABKeys = append(out.EABKeys, *key)
	}
	out.Service = svc
	return out, tx.put(bucketServices, svc.ID, svc)
}

func normalizeIdentifiers(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, Errorf(CodeInvalidArgument, "a service needs at least one identifier")
	}
	out := make([]string, 0, len(in))
	for _, id := range in {
		n, err := NormalizeIdentifier(id)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// bindServiceRealm resolves a realm's chain and SubCA, checks the service's
// identifiers against the SubCA's policy, and stores the realm's EAB key.
func bindServiceRealm(tx *Tx, svc *Service, r *CreateServiceRealm, preAuthorize bool,
	now time.Time) (*ServiceRealm, *EABKey, error) {
	if svc.Realm(r.Realm) != nil {
		return nil, nil, Errorf(CodeInvalidArgument, "realm %q is listed twice", r.Realm)
	}
	if _, err := tx.Realm(svc.Org, r.Realm); err != nil {
		return nil, nil, err
	}
	chain, err := tx.Chain(ChainID(svc.Org, r.Realm, r.Chain))
	if err != nil {
		return nil, nil, err
	}
	subID := chain.DefaultSubCAID
	if r.SubCA != "" {
		subID = chain.ID + "/" + r.SubCA
	}
	sub, err := tx.chainSubCA(chain.ID, subID)
	if err != nil {
		return nil, nil, err
	}
	if err := CheckIdentifiersAllowed(svc.Identifiers, sub); err != nil {
		return nil, nil, err
	}
	key := EABKey{
		KeyID: r.EABKeyID, HMACKey: r.EABHMACKey, ChainID: chain.ID,
		SubCAID: sub.ID, ServiceID: svc.ID,
	}
	if preAuthorize {
		key.Identifiers = svc.Identifiers
	}
	stored, err := putEABKey(tx, key, now)
	if err != nil {
		return nil, nil, err
	}
	return &ServiceRealm{Realm: r.Realm, ChainID: chain.ID, SubCAID: sub.ID,
		EABKeyIDs: []string{stored.KeyID}}, stored, nil
}

// Service returns a service by its ID ("org/name").
func (t *Tx) Service(id string) (*Service, error) {
	var s Service
	ok, err := t.get(bucketServices, id, &s)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "service %q not found", id)
	}
	return &s, nil
}

// Services lists the services of an organization.
func (t *Tx) Services(org string) ([]Service, error) {
	return list[Service](t, bucketServices, org+"/")
}
