package ca_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"anchor/ca"
	"anchor/fsm"
	"anchor/internal/testenv"
)

func TestCreateService_SpansRealmsWithEABKeys(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := ca.CreateRealm(ctx, m.Cluster, testenv.Org, "staging"); err != nil {
		t.Fatal(err)
	}
	staging, err := ca.CreateChain(ctx, m.Cluster, m.HSM, m.Cluster.ID(), ca.ChainRequest{
		Org: testenv.Org, Realm: "staging", Name: "web", URLs: env.URLs,
	})
	if err != nil {
		t.Fatal(err)
	}
	other := newSubCA(t, env, "other", fsm.Policy{})

	created, err := ca.CreateService(ctx, m.Cluster, ca.ServiceRequest{
		Org: testenv.Org, Name: "shop",
		Identifiers: []string{"Shop.Example.Test", "*.shop.example.test", "10.0.5.0/24"},
		Realms: []ca.ServiceRealmRequest{
			{Realm: testenv.Realm, Chain: testenv.Chain},
			{Realm: "staging", Chain: "web"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	svc := created.Service
	wantIDs := []string{"*.shop.example.test", "10.0.5.0/24", "shop.example.test"}
	if svc.ID != "default/shop" || !slices.Equal(svc.Identifiers, wantIDs) {
		t.Errorf("service %s with identifiers %v, want default/shop with %v",
			svc.ID, svc.Identifiers, wantIDs)
	}
	if len(created.EABKeys) != 2 || len(svc.Realms) != 2 {
		t.Fatalf("%d EAB keys and %d realms, want 2 of each", len(created.EABKeys), len(svc.Realms))
	}
	wantSubCAs := map[string]string{
		env.ChainID: env.ChainID + "/issuing", staging.ID: staging.DefaultSubCAID,
	}
	err = m.State().View(func(tx *fsm.Tx) error {
		for _, k := range created.EABKeys {
			stored, err := tx.EABKey(k.KeyID)
			if err != nil {
				return err
			}
			if stored.ServiceID != svc.ID || stored.SubCAID != wantSubCAs[stored.ChainID] ||
				len(stored.HMACKey) != 32 || len(stored.Identifiers) != 0 {
				t.Errorf("EAB key %+v, want service %s, SubCA %s, a 32-byte HMAC key and no "+
					"pre-authorized identifiers", stored, svc.ID, wantSubCAs[stored.ChainID])
			}
		}
		services, err := tx.Services(testenv.Org)
		if err != nil {
			return err
		}
		if len(services) != 1 {
			t.Errorf("%d services listed, want 1", len(services))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	issued := issueOn(t, m, &ca.Request{ChainID: env.ChainID, ServiceID: svc.ID,
		CSR: csrWith(t, p256(t), "", "api.shop.example.test", "10.0.5.9")})
	if issued.Credential.CAID != env.ChainID+"/issuing" {
		t.Errorf("service certificate signed by %s, want the service's SubCA", issued.Credential.CAID)
	}
	before := m.State().LastApplied()
	_, err = m.Issuer.Issue(ctx, &ca.Request{ChainID: env.ChainID, ServiceID: svc.ID,
		CSR: csrWith(t, p256(t), "", "api.shop.example.test", "www.other.test")})
	wantRejected(t, err, "service default/shop", "www.other.test")
	_, err = m.Issuer.Issue(ctx, &ca.Request{
		ChainID: env.ChainID, ServiceID: svc.ID, SubCAID: other.ID,
		CSR: csrWith(t, p256(t), "", "shop.example.test"),
	})
	wantRejected(t, err, other.ID)
	if after := m.State().LastApplied(); after != before {
		t.Fatalf("rejected requests advanced the log from %d to %d", before, after)
	}
}

func TestCreateService_RejectsIdentifierOutsideSubCA(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	sub := newSubCA(t, env, "corp", corpPolicy())
	cases := []struct {
		identifier string
		fragments  []string
	}{
		{"www.other.test", []string{"name_constraints.permitted_dns", sub.ID}},
		{"*.secret.corp.example.test", []string{"name_constraints.excluded_dns"}},
		{"10.30.0.0/16", []string{"name_constraints.permitted_ip"}},
		{"10.20.0.0/16", []string{"name_constraints.excluded_ip"}},
		{"spiffe://corp.example.test/x", []string{"name_types", "uri"}},
	}
	before := m.State().LastApplied()
	for _, tc := range cases {
		t.Run(tc.identifier, func(t *testing.T) {
			_, err := ca.CreateService(context.Background(), m.Cluster, ca.ServiceRequest{
				Org: testenv.Org, Name: "svc", Identifiers: []string{tc.identifier},
				Realms: []ca.ServiceRealmRequest{{Realm: testenv.Realm, Chain: testenv.Chain, SubCA: "corp"}},
			})
			wantRejected(t, err, append(tc.fragments, tc.identifier)...)
		})
	}
	if after := m.State().LastApplied(); after != before+uint64(len(cases)) {
		t.Fatalf("log advanced from %d to %d, want one rejected entry per case", before, after)
	}
	err := m.State().View(func(tx *fsm.Tx) error {
		if _, err := tx.Service("default/svc"); !fsm.IsNotFound(err) {
			t.Errorf("rejected service is stored: %v", err)
		}
		keys, err := tx.EABKeys(env.ChainID)
		if err != nil {
			return err
		}
		if len(keys) != 1 {
			t.Errorf("%d EAB keys in the chain, want only the bootstrap key", len(keys))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
