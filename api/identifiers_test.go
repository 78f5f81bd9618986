package api_test

import (
	"testing"

	"google.golang.org/grpc/codes"

	anchorv1 "anchor/api/anchorv1"
	"anchor/cluster"
	"anchor/fsm"
	"anchor/internal/testenv"
)

// TestIdentifiers_CheckedAgainstSubCAPolicy creates chain corp, whose
// default SubCA permits only DNS names under corp.test, and SubCA narrow,
// which permits only api.corp.test, and creates EAB keys and services with
// identifiers inside and outside those policies.
func TestIdentifiers_CheckedAgainstSubCAPolicy(t *testing.T) {
	f := newFixture(t)
	root := f.conn(t, 0, "root", cluster.RoleClusterAdmin)
	_, err := anchorv1.NewChainsClient(root).CreateChain(ctx(t), &anchorv1.CreateChainRequest{
		Org: testenv.Org, Realm: testenv.Realm, Name: "corp",
		Policy: &anchorv1.Policy{
			NameConstraints: &anchorv1.NameConstraints{PermittedDns: []string{"corp.test"}},
		},
	})
	check(t, err)
	_, err = anchorv1.NewSubCAsClient(root).CreateSubCA(ctx(t), &anchorv1.CreateSubCARequest{
		Org: testenv.Org, Realm: testenv.Realm, Chain: "corp", Name: "narrow",
		Policy: &anchorv1.Policy{
			NameConstraints: &anchorv1.NameConstraints{PermittedDns: []string{"api.corp.test"}},
		},
	})
	check(t, err)
	chainID := fsm.ChainID(testenv.Org, testenv.Realm, "corp")
	eab := anchorv1.NewEABKeysClient(root)
	newKey := func(subCA string, ids ...string) error {
		_, err := eab.CreateEABKey(ctx(t), &anchorv1.CreateEABKeyRequest{
			Org: testenv.Org, Realm: testenv.Realm, Chain: "corp", Subca: subCA, Identifiers: ids,
		})
		return err
	}

	t.Run("EABOutsidePermittedSubtrees", func(t *testing.T) {
		wantCode(t, newKey("", "evil.example"), codes.InvalidArgument,
			`identifier "evil.example" breaks rule name_constraints.permitted_dns of SubCA `+
				chainID+`/issuing: outside the permitted subtrees corp.test`)
		wantCode(t, newKey("", "*.evil.example"), codes.InvalidArgument,
			`identifier "*.evil.example" breaks rule name_constraints.permitted_dns`)
	})

	t.Run("EABNameTypeNotAllowed", func(t *testing.T) {
		wantCode(t, newKey("", "ops@corp.test"), codes.InvalidArgument,
			`identifier "ops@corp.test" breaks rule name_types of SubCA `+chainID+
				`/issuing: email names are not allowed, allowed are dns, ip`)
	})

	t.Run("EABNamedSubCA", func(t *testing.T) {
		wantCode(t, newKey("narrow", "*.corp.test"), codes.InvalidArgument,
			`identifier "*.corp.test" breaks rule name_constraints.permitted_dns of SubCA `+
				chainID+`/narrow: outside the permitted subtrees api.corp.test`)
		check(t, newKey("narrow", "*.api.corp.test"))
	})

	t.Run("EABInsidePolicy", func(t *testing.T) {
		check(t, newKey("", "*.corp.test", "www.corp.test", "10.0.0.1"))
		list, err := eab.ListEABKeys(ctx(t), &anchorv1.ListEABKeysRequest{
			Org: testenv.Org, Realm: testenv.Realm, Chain: "corp",
		})
		check(t, err)
		// The keys are those of EABNamedSubCA and this subtest, because no
		// rejected request committed one.
		if len(list.Keys) != 2 {
			t.Errorf("chain corp has %d EAB keys, want 2", len(list.Keys))
		}
	})

	svcs := anchorv1.NewServicesClient(root)
	newService := func(name string, ids ...string) error {
		_, err := svcs.CreateService(ctx(t), &anchorv1.CreateServiceRequest{
			Org: testenv.Org, Name: name, Identifiers: ids,
			Realms: []*anchorv1.ServiceRealmSpec{{Realm: testenv.Realm, Chain: "corp"}},
		})
		return err
	}

	t.Run("ServiceOutsidePermittedSubtrees", func(t *testing.T) {
		wantCode(t, newService("evil", "evil.example"), codes.InvalidArgument,
			`identifier "evil.example" breaks rule name_constraints.permitted_dns of SubCA `+
				chainID+`/issuing: outside the permitted subtrees corp.test`)
	})

	t.Run("ServiceInsidePolicy", func(t *testing.T) {
		check(t, newService("web", "*.corp.test"))
	})
}
