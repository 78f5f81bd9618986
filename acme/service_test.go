package acme

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"

	"anchor/ca"
	"anchor/fsm"
	"anchor/internal/testenv"
)

// TestLego_ServiceEABKeyPicksSubCA checks that an account bound by a
// service's EAB key is issued by the SubCA the service chose, and may order
// only the service's names.
func TestLego_ServiceEABKeyPicksSubCA(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	sub, err := ca.CreateSubCA(t.Context(), m.Cluster, m.HSM, m.Cluster.ID(), ca.SubCARequest{
		ChainID: env.ChainID, Name: "services", URLs: env.URLs,
	})
	if err != nil {
		t.Fatalf("create SubCA: %v", err)
	}
	created, err := ca.CreateService(t.Context(), m.Cluster, ca.ServiceRequest{
		Org: testenv.Org, Name: "web", Identifiers: []string{"*.svc.test"}, PreAuthorize: true,
		Realms: []ca.ServiceRealmRequest{{Realm: testenv.Realm, Chain: testenv.Chain, SubCA: "services"}},
	})
	if err != nil {
		t.Fatalf("create service: %v", err)
	}
	if len(created.EABKeys) != 1 {
		t.Fatalf("service has %d EAB keys, want 1", len(created.EABKeys))
	}
	a := startClusterACME(t, env, 0, Options{})
	client := newLegoClient(t, a, created.EABKeys[0])

	res, err := client.Certificate.Obtain(t.Context(), certificate.ObtainRequest{
		Domains: []string{"api.svc.test"}, Bundle: true, KeyType: certcrypto.EC256,
	})
	if err != nil {
		t.Fatalf("obtain inside the service's names: %v", err)
	}
	block, _ := pem.Decode(res.Certificate)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	subCert, err := sub.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.CheckSignatureFrom(subCert); err != nil {
		t.Fatalf("leaf is not signed by the service's SubCA %s: %v", sub.ID, err)
	}

	_, err = client.Certificate.Obtain(t.Context(), certificate.ObtainRequest{
		Domains: []string{"www.elsewhere.test"}, Bundle: true, KeyType: certcrypto.EC256,
	})
	if err == nil || !strings.Contains(err.Error(), "rejectedIdentifier") {
		t.Fatalf("order outside the service's names: got %v, want rejectedIdentifier", err)
	}

	// The account's registration, issuance and revocation are audited
	// under the account.
	if err := client.Certificate.Revoke(t.Context(), res.Certificate); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	seen := map[fsm.CommandType]string{}
	_ = m.State().View(func(tx *fsm.Tx) error {
		events, err := tx.AuditEvents(0, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events {
			if strings.HasPrefix(ev.Actor, "acme-account:") && ev.Outcome == "ok" {
				seen[ev.Type] = ev.Actor
			}
		}
		return nil
	})
	for _, typ := range []fsm.CommandType{fsm.CmdACMECreateAccount, fsm.CmdIssueCredential, fsm.CmdRevoke} {
		if seen[typ] == "" {
			t.Errorf("no audit event of %s by an ACME account (seen %v)", typ, seen)
		}
	}
}
