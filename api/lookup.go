package api

import (
	"anchor/fsm"
)

// The lookups below name a missing object in the words of the request:
// `chain "web" not found in realm "prod" of organization "acme"`, not by
// its internal ID.

func lookupOrg(tx *fsm.Tx, org string) (*fsm.Organization, error) {
	o, err := tx.Organization(org)
	if fsm.IsNotFound(err) {
		return nil, fsm.Errorf(fsm.CodeNotFound, "organization %q not found", org)
	}
	return o, err
}

func lookupRealm(tx *fsm.Tx, org, realm string) (*fsm.Realm, error) {
	if _, err := lookupOrg(tx, org); err != nil {
		return nil, err
	}
	r, err := tx.Realm(org, realm)
	if fsm.IsNotFound(err) {
		return nil, fsm.Errorf(fsm.CodeNotFound, "realm %q not found in organization %q", realm, org)
	}
	return r, err
}

func lookupChain(tx *fsm.Tx, org, realm, chain string) (*fsm.Chain, error) {
	if _, err := lookupRealm(tx, org, realm); err != nil {
		return nil, err
	}
	c, err := tx.Chain(fsm.ChainID(org, realm, chain))
	if fsm.IsNotFound(err) {
		return nil, fsm.Errorf(fsm.CodeNotFound, "chain %q not found in realm %q of organization %q",
			chain, realm, org)
	}
	return c, err
}

// lookupCA returns the CA named name ("root" or a SubCA's name) of a chain.
func lookupCA(tx *fsm.Tx, org, realm, chain, name string) (*fsm.CA, error) {
	c, err := lookupChain(tx, org, realm, chain)
	if err != nil {
		return nil, err
	}
	ca, err := tx.CA(c.ID + "/" + name)
	if fsm.IsNotFound(err) {
		return nil, fsm.Errorf(fsm.CodeNotFound, "CA %q not found in chain %q of realm %q",
			name, chain, realm)
	}
	return ca, err
}

// lookupSubCA is lookupCA for a SubCA.
func lookupSubCA(tx *fsm.Tx, org, realm, chain, name string) (*fsm.CA, error) {
	ca, err := lookupCA(tx, org, realm, chain, name)
	if err != nil {
		if fsm.IsNotFound(err) {
			return nil, fsm.Errorf(fsm.CodeNotFound, "SubCA %q not found in chain %q of realm %q",
				name, chain, realm)
		}
		return nil, err
	}
	if ca.Kind != fsm.CAKindSub {
		return nil, fsm.Errorf(fsm.CodeInvalidArgument, "CA %q of chain %q is a root, not a SubCA",
			name, chain)
	}
	return ca, nil
}

func lookupService(tx *fsm.Tx, org, name string) (*fsm.Service, error) {
	if _, err := lookupOrg(tx, org); err != nil {
		return nil, err
	}
	svc, err := tx.Service(fsm.ServiceID(org, name))
	if fsm.IsNotFound(err) {
		return nil, fsm.Errorf(fsm.CodeNotFound, "service %q not found in organization %q", name, org)
	}
	return svc, err
}
