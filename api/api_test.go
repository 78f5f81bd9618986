package api_test

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	anchorv1 "anchor/api/anchorv1"
	"anchor/cluster"
)

// TestAdminAPI runs every admin service against one three-node cluster
// over mutual TLS on loopback. The setup creates organizations alpha and
// beta, realm prod in each, chain app in alpha (through a follower) and web
// in beta, and one certificate in beta.
func TestAdminAPI(t *testing.T) {
	f := newFixture(t)
	f.runPublishers(t)
	root := f.conn(t, 0, "root", cluster.RoleClusterAdmin)
	viaFollower := f.conn(t, 1, "root", cluster.RoleClusterAdmin)
	orgs := anchorv1.NewOrganizationsClient(root)
	realms := anchorv1.NewRealmsClient(root)
	for _, org := range []string{"alpha", "beta"} {
		_, err := orgs.CreateOrganization(ctx(t), &anchorv1.CreateOrganizationRequest{Name: org})
		check(t, err)
		_, err = realms.CreateRealm(ctx(t), &anchorv1.CreateRealmRequest{Org: org, Name: "prod"})
		check(t, err)
	}
	_, err := anchorv1.NewChainsClient(viaFollower).CreateChain(ctx(t),
		&anchorv1.CreateChainRequest{Org: "alpha", Realm: "prod", Name: "app"})
	check(t, err)
	web, err := anchorv1.NewChainsClient(root).CreateChain(ctx(t),
		&anchorv1.CreateChainRequest{Org: "beta", Realm: "prod", Name: "web"})
	check(t, err)
	betaCred := f.issue(t, 0, web.Id, "www.beta.test")

	alice := f.conn(t, 1, "alice", cluster.RoleOrgAdminPrefix+"alpha")
	rita := f.conn(t, 2, "rita", cluster.RoleReadOnly)

	t.Run("OrgAdminCannotWriteOtherOrg", func(t *testing.T) {
		_, err := anchorv1.NewRealmsClient(alice).CreateRealm(ctx(t),
			&anchorv1.CreateRealmRequest{Org: "beta", Name: "dev"})
		wantCode(t, err, codes.PermissionDenied, `organization "beta"`)
		list, err := realms.ListRealms(ctx(t), &anchorv1.ListRealmsRequest{Org: "beta"})
		check(t, err)
		if len(list.Realms) != 1 {
			t.Errorf("beta has %d realms after the denied call, want 1", len(list.Realms))
		}
		if got := f.logs.lines(`"admin call denied"`, `"caller":"alice"`,
			`"method":"/anchor.v1.Realms/CreateRealm"`, `organization \"beta\"`); len(got) != 1 {
			t.Errorf("denial logged %d times, want once", len(got))
		}
		if types := f.auditTypes(t, "admin:alice"); len(types) != 0 {
			t.Errorf("audit trail of alice after a denied call: %v", types)
		}
	})

	t.Run("OrgAdminCannotRevokeOtherOrgCertificate", func(t *testing.T) {
		_, err := anchorv1.NewCertificatesClient(alice).RevokeCertificate(ctx(t),
			&anchorv1.RevokeCertificateRequest{Serial: betaCred.Serial, Reason: 1})
		wantCode(t, err, codes.PermissionDenied, `organization "beta"`)
		cert, err := anchorv1.NewCertificatesClient(root).GetCertificate(ctx(t),
			&anchorv1.GetCertificateRequest{Serial: betaCred.Serial})
		check(t, err)
		if cert.Credentials[0].Revoked {
			t.Error("the denied revocation revoked the certificate")
		}
		if got := f.logs.lines(`"caller":"alice"`, `RevokeCertificate`); len(got) != 1 {
			t.Errorf("denied revocation logged %d times, want once", len(got))
		}
	})

	t.Run("OrgAdminCannotReadOtherOrg", func(t *testing.T) {
		certs := anchorv1.NewCertificatesClient(alice)
		_, err := anchorv1.NewRealmsClient(alice).ListRealms(ctx(t),
			&anchorv1.ListRealmsRequest{Org: "beta"})
		wantCode(t, err, codes.PermissionDenied, "")
		_, err = certs.GetCertificate(ctx(t), &anchorv1.GetCertificateRequest{Serial: betaCred.Serial})
		wantCode(t, err, codes.PermissionDenied, "")
		_, err = anchorv1.NewChainsClient(alice).GetChain(ctx(t),
			&anchorv1.GetChainRequest{Org: "beta", Realm: "prod", Name: "web"})
		wantCode(t, err, codes.PermissionDenied, "")
		list, err := anchorv1.NewOrganizationsClient(alice).ListOrganizations(ctx(t),
			&anchorv1.ListOrganizationsRequest{})
		check(t, err)
		if len(list.Organizations) != 1 || list.Organizations[0].Name != "alpha" {
			t.Errorf("alice lists organizations %v, want only alpha", list.Organizations)
		}
		found, err := certs.SearchCertificates(ctx(t), &anchorv1.SearchCertificatesRequest{Name: "beta"})
		check(t, err)
		if len(found.Certificates) != 0 {
			t.Errorf("alice finds %d certificates of beta", len(found.Certificates))
		}
		all, err := certs.ListCertificates(ctx(t), &anchorv1.ListCertificatesRequest{})
		check(t, err)
		if len(all.Certificates) != 0 {
			t.Errorf("alice lists %d certificates outside alpha", len(all.Certificates))
		}
	})

	t.Run("OrgAdminWritesOwnOrg", func(t *testing.T) {
		_, err := anchorv1.NewRealmsClient(alice).CreateRealm(ctx(t),
			&anchorv1.CreateRealmRequest{Org: "alpha", Name: "dev"})
		check(t, err)
		if types := f.auditTypes(t, "admin:alice"); !slices.Contains(types, "realm.create") {
			t.Errorf("audit trail of alice %v lacks realm.create", types)
		}
		members := anchorv1.NewOrganizationsClient(alice)
		_, err = members.AddMember(ctx(t), &anchorv1.AddMemberRequest{Org: "alpha", Identity: "bob",
			Role: "viewer"})
		check(t, err)
		list, err := members.ListMembers(ctx(t), &anchorv1.ListMembersRequest{Org: "alpha"})
		check(t, err)
		if len(list.Members) != 1 || list.Members[0].Identity != "bob" {
			t.Errorf("members of alpha: %v", list.Members)
		}
		_, err = members.RemoveMember(ctx(t),
			&anchorv1.RemoveMemberRequest{Org: "alpha", Identity: "bob"})
		check(t, err)
	})

	t.Run("OrgAdminCannotCreateOrganization", func(t *testing.T) {
		_, err := anchorv1.NewOrganizationsClient(alice).CreateOrganization(ctx(t),
			&anchorv1.CreateOrganizationRequest{Name: "gamma"})
		wantCode(t, err, codes.PermissionDenied, "")
	})

	t.Run("ReadOnlyCannotWrite", func(t *testing.T) {
		_, err := anchorv1.NewOrganizationsClient(rita).CreateOrganization(ctx(t),
			&anchorv1.CreateOrganizationRequest{Name: "gamma"})
		wantCode(t, err, codes.PermissionDenied, "may not administer")
		_, err = anchorv1.NewEABKeysClient(rita).CreateEABKey(ctx(t),
			&anchorv1.CreateEABKeyRequest{Org: "alpha", Realm: "prod", Chain: "app"})
		wantCode(t, err, codes.PermissionDenied, "may not write")
		list, err := orgs.ListOrganizations(ctx(t), &anchorv1.ListOrganizationsRequest{})
		check(t, err)
		if len(list.Organizations) != 3 { // default, alpha, beta
			t.Errorf("%d organizations after denied calls, want 3", len(list.Organizations))
		}
		if got := f.logs.lines(`"admin call denied"`, `"caller":"rita"`); len(got) != 2 {
			t.Errorf("rita's denials logged %d times, want 2", len(got))
		}
	})

	t.Run("ReadOnlyReads", func(t *testing.T) {
		all, err := anchorv1.NewCertificatesClient(rita).ListCertificates(ctx(t),
			&anchorv1.ListCertificatesRequest{})
		check(t, err)
		if !hasCertificate(all.Certificates, betaCred.CertificateID) {
			t.Error("read-only admin does not list the certificate of beta")
		}
		st, err := anchorv1.NewClusterClient(rita).Status(ctx(t), &anchorv1.StatusRequest{})
		check(t, err)
		if len(st.Members) != 3 {
			t.Errorf("status lists %d members, want 3", len(st.Members))
		}
	})

	t.Run("ReadOnlyCannotChangeCluster", func(t *testing.T) {
		_, err := anchorv1.NewClusterClient(rita).Remove(ctx(t), &anchorv1.RemoveRequest{Id: "node3"})
		wantCode(t, err, codes.PermissionDenied, "may not call Remove")
		got := f.logs.lines(`"admin call denied"`, `"caller":"rita"`, `"method":"Remove"`)
		if len(got) != 1 {
			t.Errorf("cluster denial logged %d times, want once", len(got))
		}
		st, err := anchorv1.NewClusterClient(root).Status(ctx(t), &anchorv1.StatusRequest{})
		check(t, err)
		if len(st.Members) != 3 {
			t.Errorf("%d members after the denied removal, want 3", len(st.Members))
		}
	})

	t.Run("OrgAdminCannotReadClusterStatus", func(t *testing.T) {
		_, err := anchorv1.NewClusterClient(alice).Status(ctx(t), &anchorv1.StatusRequest{})
		wantCode(t, err, codes.PermissionDenied, "")
	})

	t.Run("NodeCertificateDenied", func(t *testing.T) {
		node := f.nodeConn(t, 0)
		_, err := anchorv1.NewOrganizationsClient(node).ListOrganizations(ctx(t),
			&anchorv1.ListOrganizationsRequest{})
		wantCode(t, err, codes.PermissionDenied, "node certificate")
		_, err = anchorv1.NewClusterClient(node).Status(ctx(t), &anchorv1.StatusRequest{})
		check(t, err)
	})

	t.Run("ErrorsNameTheObject", func(t *testing.T) {
		chains := anchorv1.NewChainsClient(root)
		_, err := chains.GetChain(ctx(t),
			&anchorv1.GetChainRequest{Org: "alpha", Realm: "prod", Name: "nope"})
		wantCode(t, err, codes.NotFound,
			`chain "nope" not found in realm "prod" of organization "alpha"`)
		_, err = chains.GetChain(ctx(t), &anchorv1.GetChainRequest{Org: "alpha", Realm: "qa", Name: "x"})
		wantCode(t, err, codes.NotFound, `realm "qa" not found in organization "alpha"`)
		_, err = orgs.CreateOrganization(ctx(t), &anchorv1.CreateOrganizationRequest{Name: "alpha"})
		wantCode(t, err, codes.AlreadyExists, `organization "alpha" already exists`)
		_, err = realms.CreateRealm(ctx(t), &anchorv1.CreateRealmRequest{Org: "alpha", Name: "Bad_Name"})
		wantCode(t, err, codes.InvalidArgument, `invalid realm name "Bad_Name"`)
		_, err = anchorv1.NewCertificatesClient(root).RevokeCertificate(ctx(t),
			&anchorv1.RevokeCertificateRequest{Serial: betaCred.Serial, Reason: 7})
		wantCode(t, err, codes.InvalidArgument, "reason code 7")
		_, err = anchorv1.NewCertificatesClient(root).GetCertificate(ctx(t),
			&anchorv1.GetCertificateRequest{Serial: "00:ab:cd"})
		wantCode(t, err, codes.NotFound, "serial abcd")
	})

	t.Run("ChainCreateChecksRealmBeforeKeys", func(t *testing.T) {
		before := len(f.auditTypes(t, "admin:root"))
		_, err := anchorv1.NewChainsClient(root).CreateChain(ctx(t),
			&anchorv1.CreateChainRequest{Org: "alpha", Realm: "qa", Name: "x"})
		wantCode(t, err, codes.NotFound, `realm "qa" not found`)
		if after := len(f.auditTypes(t, "admin:root")); after != before {
			t.Errorf("the rejected chain committed %d commands", after-before)
		}
	})

	t.Run("ValidityOutOfRangeRejected", func(t *testing.T) {
		before := len(f.auditTypes(t, "admin:root"))
		chains := anchorv1.NewChainsClient(root)
		// 200,000 days overflowed time.Duration into a negative lifetime.
		_, err := chains.CreateChain(ctx(t), &anchorv1.CreateChainRequest{
			Org: "alpha", Realm: "prod", Name: "long", RootValidityDays: 200000})
		wantCode(t, err, codes.InvalidArgument, "root_validity_days 200000 is out of range")
		_, err = chains.CreateChain(ctx(t), &anchorv1.CreateChainRequest{
			Org: "alpha", Realm: "prod", Name: "long", SubcaValidityDays: 36501})
		wantCode(t, err, codes.InvalidArgument, "subca_validity_days 36501 is out of range")
		_, err = anchorv1.NewSubCAsClient(root).CreateSubCA(ctx(t), &anchorv1.CreateSubCARequest{
			Org: "alpha", Realm: "prod", Chain: "app", Name: "long", ValidityDays: 36501})
		wantCode(t, err, codes.InvalidArgument, "validity_days 36501 is out of range")
		_, err = chains.CreateChain(ctx(t), &anchorv1.CreateChainRequest{
			Org: "alpha", Realm: "prod", Name: "long",
			Policy: &anchorv1.Policy{MaxValiditySeconds: 1 << 62}})
		wantCode(t, err, codes.InvalidArgument, "policy.max_validity_seconds")
		if after := len(f.auditTypes(t, "admin:root")); after != before {
			t.Errorf("the rejected requests committed %d commands", after-before)
		}
	})

	t.Run("EABKeyShownOnce", func(t *testing.T) {
		eab := anchorv1.NewEABKeysClient(alice)
		secret, err := eab.CreateEABKey(ctx(t), &anchorv1.CreateEABKeyRequest{
			Org: "alpha", Realm: "prod", Chain: "app", Identifiers: []string{"*.alpha.test"},
		})
		check(t, err)
		hmacKey, err := base64.RawURLEncoding.DecodeString(secret.HmacKey)
		if err != nil || len(hmacKey) != 32 {
			t.Fatalf("HMAC key %q is not 32 bytes of base64url: %v", secret.HmacKey, err)
		}
		list, err := eab.ListEABKeys(ctx(t), &anchorv1.ListEABKeysRequest{Org: "alpha"})
		check(t, err)
		data, err := protojson.Marshal(list)
		check(t, err)
		if !strings.Contains(string(data), secret.Key.KeyId) {
			t.Errorf("listing lacks key %s", secret.Key.KeyId)
		}
		if strings.Contains(string(data), secret.HmacKey) {
			t.Error("listing shows the HMAC key")
		}
	})

	t.Run("ServiceLifecycle", func(t *testing.T) {
		svcs := anchorv1.NewServicesClient(root)
		created, err := svcs.CreateService(ctx(t), &anchorv1.CreateServiceRequest{
			Org: "alpha", Name: "api", Identifiers: []string{"*.api.alpha.test"},
			Realms: []*anchorv1.ServiceRealmSpec{{Realm: "prod", Chain: "app"}},
		})
		check(t, err)
		if len(created.EabKeys) != 1 || created.EabKeys[0].HmacKey == "" {
			t.Fatalf("service created with EAB keys %v, want one with its HMAC key", created.EabKeys)
		}
		got, err := svcs.GetService(ctx(t), &anchorv1.GetServiceRequest{Org: "alpha", Name: "api"})
		check(t, err)
		if got.Realms[0].ChainId != "alpha/prod/app" {
			t.Errorf("service realm chain %q", got.Realms[0].ChainId)
		}
		_, err = svcs.CreateService(ctx(t), &anchorv1.CreateServiceRequest{
			Org: "alpha", Name: "bad", Identifiers: []string{"x.test"},
			Realms: []*anchorv1.ServiceRealmSpec{{Realm: "prod", Chain: "nope"}},
		})
		wantCode(t, err, codes.NotFound, `chain "nope" not found in realm "prod"`)
	})

	t.Run("ListCertificatesPages", func(t *testing.T) {
		for i := range 3 {
			f.issue(t, 1, "alpha/prod/app", fmt.Sprintf("h%d.alpha.test", i))
		}
		certs := anchorv1.NewCertificatesClient(alice)
		first, err := certs.ListCertificates(ctx(t), &anchorv1.ListCertificatesRequest{PageSize: 2})
		check(t, err)
		if len(first.Certificates) != 2 || first.NextPageToken == "" {
			t.Fatalf("first page: %d certificates, token %q", len(first.Certificates), first.NextPageToken)
		}
		second, err := certs.ListCertificates(ctx(t), &anchorv1.ListCertificatesRequest{
			PageSize: 2, PageToken: first.NextPageToken,
		})
		check(t, err)
		if len(second.Certificates) != 1 || second.NextPageToken != "" {
			t.Errorf("second page: %d certificates, token %q",
				len(second.Certificates), second.NextPageToken)
		}
		if first.TotalSize != 3 || second.TotalSize != 3 {
			t.Errorf("total_size %d on the first page and %d on the second, want 3",
				first.TotalSize, second.TotalSize)
		}
		byChain, err := certs.ListCertificates(ctx(t), &anchorv1.ListCertificatesRequest{
			Org: "alpha", Realm: "prod", Chain: "app",
		})
		check(t, err)
		if byChain.TotalSize != 3 {
			t.Errorf("chain alpha/prod/app: total_size %d, want 3", byChain.TotalSize)
		}
		_, err = certs.ListCertificates(ctx(t), &anchorv1.ListCertificatesRequest{Chain: "app"})
		wantCode(t, err, codes.InvalidArgument, `chain "app" needs org and realm`)
		// An organization admin's own organization is the default org.
		byRealm, err := certs.ListCertificates(ctx(t), &anchorv1.ListCertificatesRequest{Realm: "prod"})
		check(t, err)
		if byRealm.TotalSize != 3 {
			t.Errorf("realm prod of alice's organization: total_size %d, want 3", byRealm.TotalSize)
		}
		found, err := certs.SearchCertificates(ctx(t),
			&anchorv1.SearchCertificatesRequest{Name: "H1.ALPHA"})
		check(t, err)
		if len(found.Certificates) != 1 || found.Certificates[0].Names[0] != "h1.alpha.test" {
			t.Errorf("search h1: %v", found.Certificates)
		}
		if found.TotalSize != 1 {
			t.Errorf("search h1: total_size %d, want 1", found.TotalSize)
		}
	})

	t.Run("RenewThenRevoke", func(t *testing.T) {
		certs := anchorv1.NewCertificatesClient(root)
		renewed, err := certs.RenewCertificate(ctx(t),
			&anchorv1.RenewCertificateRequest{Id: betaCred.CertificateID})
		check(t, err)
		if renewed.Credential.Serial == betaCred.Serial || len(renewed.Certificate.Credentials) != 2 {
			t.Fatalf("renewal gave serial %s and %d credentials", renewed.Credential.Serial,
				len(renewed.Certificate.Credentials))
		}
		revoked, err := certs.RevokeCertificate(ctx(t),
			&anchorv1.RevokeCertificateRequest{Serial: betaCred.Serial, Reason: 1})
		check(t, err)
		if !revoked.Revoked || revoked.Reason != 1 {
			t.Errorf("revoked credential: %v", revoked)
		}
		_, err = certs.RevokeCertificate(ctx(t),
			&anchorv1.RevokeCertificateRequest{Serial: betaCred.Serial, Reason: 1})
		wantCode(t, err, codes.AlreadyExists, "already revoked")
		_, err = certs.RenewCertificate(ctx(t),
			&anchorv1.RenewCertificateRequest{Id: betaCred.CertificateID})
		wantCode(t, err, codes.FailedPrecondition, "key compromise")
		types := f.auditTypes(t, "admin:root")
		for _, want := range []string{"credential.issue", "credential.revoke"} {
			if !slices.Contains(types, want) {
				t.Errorf("audit trail of root lacks %s", want)
			}
		}
	})

	t.Run("SubCARevocationReachesRootCRL", func(t *testing.T) {
		subs := anchorv1.NewSubCAsClient(root)
		sub, err := subs.CreateSubCA(ctx(t), &anchorv1.CreateSubCARequest{
			Org: "beta", Realm: "prod", Chain: "web", Name: "second",
			Policy: &anchorv1.Policy{
				NameConstraints: &anchorv1.NameConstraints{PermittedDns: []string{"beta.test"}},
			},
		})
		check(t, err)
		if sub.Policy.NameConstraints.PermittedDns[0] != "beta.test" {
			t.Errorf("SubCA policy %v", sub.Policy)
		}
		revoked, err := subs.RevokeSubCA(ctx(t), &anchorv1.RevokeSubCARequest{
			Org: "beta", Realm: "prod", Chain: "web", Name: "second", Reason: 2,
		})
		check(t, err)
		if !revoked.Revoked {
			t.Fatal("SubCA not marked revoked")
		}
		crls := anchorv1.NewCRLsClient(rita)
		eventually(t, 30*time.Second, func() error {
			c, err := crls.GetCRL(ctx(t),
				&anchorv1.GetCRLRequest{Org: "beta", Realm: "prod", Chain: "web", Ca: "root"})
			if err != nil {
				return err
			}
			if c.Entries != 1 {
				return fmt.Errorf("root CRL number %d has %d entries", c.Number, c.Entries)
			}
			return nil
		})
	})

	t.Run("AuditListing", func(t *testing.T) {
		audit := anchorv1.NewAuditClient(root)
		resp, err := audit.ListAuditEvents(ctx(t), &anchorv1.ListAuditEventsRequest{Actor: "admin:root"})
		check(t, err)
		var types []string
		for _, e := range resp.Events {
			types = append(types, e.Type)
		}
		wanted := []string{"organization.create", "realm.create", "key.create", "chain.create"}
		for _, want := range wanted {
			if !slices.Contains(types, want) {
				t.Errorf("audit events of root %v lack %s", types, want)
			}
		}
		own, err := anchorv1.NewAuditClient(alice).ListAuditEvents(ctx(t),
			&anchorv1.ListAuditEventsRequest{})
		check(t, err)
		for _, e := range own.Events {
			if e.Actor != "admin:alice" {
				t.Errorf("alice reads the event %d of %s", e.Index, e.Actor)
			}
		}
		_, err = anchorv1.NewAuditClient(alice).ListAuditEvents(ctx(t),
			&anchorv1.ListAuditEventsRequest{Actor: "admin:root"})
		wantCode(t, err, codes.PermissionDenied, "")
	})
}

func hasCertificate(list []*anchorv1.Certificate, id string) bool {
	for _, c := range list {
		if c.Id == id {
			return true
		}
	}
	return false
}
