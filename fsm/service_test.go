package fsm

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestCreateService_BindsRealmsAndEABKeys(t *testing.T) {
	s := newPKIState(t)
	res := s.must(CmdCreateService, CreateService{
		Org: "o", Name: "shop", Identifiers: []string{"Shop.Example.Test", "*.shop.example.test"},
		PreAuthorize: true,
		Realms: []CreateServiceRealm{
			{Realm: "r", Chain: "c", EABKeyID: "kid-1", EABHMACKey: make([]byte, 32)},
		},
	})
	var out CreatedService
	if err := json.Unmarshal(res.Data, &out); err != nil {
		t.Fatal(err)
	}
	want := []string{"*.shop.example.test", "shop.example.test"}
	if !slices.Equal(out.Service.Identifiers, want) {
		t.Errorf("identifiers %v, want %v", out.Service.Identifiers, want)
	}
	s.view(func(tx *Tx) error {
		k, err := tx.EABKey("kid-1")
		if err != nil {
			return err
		}
		if k.ServiceID != "o/shop" || k.SubCAID != s.chain+"/sub" || !slices.Equal(k.Identifiers, want) {
			t.Errorf("EAB key %+v, want service o/shop, SubCA %s/sub and the pre-authorized identifiers",
				k, s.chain)
		}
		return nil
	})
	if !out.Service.Covers("api.shop.example.test") || out.Service.Covers("shop.example.org") {
		t.Error("service coverage does not follow its identifiers")
	}
}

func TestCreateService_RejectsInvalidBindings(t *testing.T) {
	s := newPKIState(t)
	s.must(CmdCreateOrganization, CreateOrganization{Name: "p"})
	s.must(CmdCreateRealm, CreateRealm{Org: "p", Name: "r"})
	realm := func(chain, sub, kid string) CreateServiceRealm {
		return CreateServiceRealm{Realm: "r", Chain: chain, SubCA: sub, EABKeyID: kid,
			EABHMACKey: make([]byte, 32)}
	}
	cases := []struct {
		name string
		p    CreateService
		code Code
		want string
	}{
		{"no identifiers", CreateService{Org: "o", Name: "a",
			Realms: []CreateServiceRealm{realm("c", "", "k1")}},
			CodeInvalidArgument, "identifier"},
		{"no realm", CreateService{Org: "o", Name: "a", Identifiers: []string{"a.test"}},
			CodeInvalidArgument, "realm"},
		{"realm twice", CreateService{Org: "o", Name: "a", Identifiers: []string{"a.test"},
			Realms: []CreateServiceRealm{realm("c", "", "k1"), realm("c", "", "k2")}},
			CodeInvalidArgument, "twice"},
		{"unknown SubCA", CreateService{Org: "o", Name: "a", Identifiers: []string{"a.test"},
			Realms: []CreateServiceRealm{realm("c", "nope", "k1")}}, CodeNotFound, "nope"},
		{"root as SubCA", CreateService{Org: "o", Name: "a", Identifiers: []string{"a.test"},
			Realms: []CreateServiceRealm{realm("c", "root", "k1")}}, CodeInvalidArgument, "not a SubCA"},
		{"chain of another organization", CreateService{Org: "p", Name: "a",
			Identifiers: []string{"a.test"},
			Realms:      []CreateServiceRealm{realm("c", "", "k1")}}, CodeNotFound, "p/r/c"},
		{"invalid identifier", CreateService{Org: "o", Name: "a", Identifiers: []string{"bad_name.test"},
			Realms: []CreateServiceRealm{realm("c", "", "k1")}}, CodeInvalidArgument, "bad_name.test"},
		{"short HMAC key", CreateService{Org: "o", Name: "a", Identifiers: []string{"a.test"},
			Realms: []CreateServiceRealm{
				{Realm: "r", Chain: "c", EABKeyID: "k1", EABHMACKey: []byte("short")},
			}},
			CodeInvalidArgument, "HMAC"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.apply(CmdCreateService, tc.p)
			wantCode(t, err, tc.code, tc.want)
		})
	}
	s.view(func(tx *Tx) error {
		if _, err := tx.EABKey("k1"); !IsNotFound(err) {
			t.Errorf("a rejected service left EAB key k1: %v", err)
		}
		return nil
	})
}
