package api_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	anchorv1 "anchor/api/anchorv1"
	"anchor/cluster"
	"anchor/internal/testenv"
)

// TestListAuditEvents_Target revokes a certificate and creates an EAB key,
// and reads the events' targets: the serial and the key ID, without the
// HMAC key.
func TestListAuditEvents_Target(t *testing.T) {
	f := newFixture(t)
	root := f.conn(t, 1, "root", cluster.RoleClusterAdmin)
	cred := f.issue(t, 0, f.env.ChainID, "www.default.test")
	_, err := anchorv1.NewCertificatesClient(root).RevokeCertificate(ctx(t),
		&anchorv1.RevokeCertificateRequest{Serial: cred.Serial, Reason: 1})
	check(t, err)
	secret, err := anchorv1.NewEABKeysClient(root).CreateEABKey(ctx(t), &anchorv1.CreateEABKeyRequest{
		Org: testenv.Org, Realm: testenv.Realm, Chain: testenv.Chain,
	})
	check(t, err)

	resp, err := anchorv1.NewAuditClient(root).ListAuditEvents(ctx(t),
		&anchorv1.ListAuditEventsRequest{Actor: "admin:root"})
	check(t, err)
	targets := map[string]string{}
	for _, e := range resp.Events {
		targets[e.Type] = e.Target
	}
	if got := targets["credential.revoke"]; got != cred.Serial {
		t.Errorf("credential.revoke target %q, want the serial %s", got, cred.Serial)
	}
	if got := targets["eab.create"]; got != secret.Key.KeyId {
		t.Errorf("eab.create target %q, want the key ID %s", got, secret.Key.KeyId)
	}
	hmacKey, err := base64.RawURLEncoding.DecodeString(secret.HmacKey)
	if err != nil || len(hmacKey) != 32 {
		t.Fatalf("HMAC key %q is not 32 bytes of base64url: %v", secret.HmacKey, err)
	}
	data, err := protojson.Marshal(resp)
	check(t, err)
	for _, encoded := range []string{secret.HmacKey, base64.StdEncoding.EncodeToString(hmacKey)} {
		if strings.Contains(string(data), encoded) {
			t.Errorf("audit events show the HMAC key as %s", encoded)
		}
	}
}
