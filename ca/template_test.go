package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"slices"
	"testing"
	"time"

	"anchor/ca"
	"anchor/fsm"
	"anchor/internal/testenv"
)

func TestIssue_TemplateRejectionsNameRule(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	strict := newSubCA(t, env, "strict", fsm.Policy{
		KeyTypes: []string{fsm.KeyTypeP256}, MaxValidity: 30 * 24 * time.Hour,
		NameTypes: []string{fsm.NameDNS},
	})
	encipherOnly := newSubCA(t, env, "encipher-only", fsm.Policy{
		KeyUsages: []string{fsm.KeyUsageKeyEncipherment},
	})
	short := newSubCAWith(t, env, ca.SubCARequest{Name: "short", Validity: 24 * time.Hour,
		Policy: fsm.Policy{MaxValidity: 30 * 24 * time.Hour}})
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now().UTC()
	name := "app.example.test"
	cases := []struct {
		name      string
		req       ca.Request
		fragments []string
	}{
		{"key type", ca.Request{SubCAID: strict.ID, CSR: csrWith(t, p384, "", name)},
			[]string{"key_types", "ecdsa-p384", strict.ID}},
		{"RSA key size", ca.Request{SubCAID: strict.ID, CSR: csrWith(t, rsaKey(t, 2048), "", name)},
			[]string{"key_types", "rsa-2048"}},
		{"name type", ca.Request{SubCAID: strict.ID, CSR: csrWith(t, p256(t), "", name, "10.1.1.1")},
			[]string{"name_types", `ip name "10.1.1.1"`}},
		{"maximum validity", ca.Request{SubCAID: strict.ID, CSR: csrWith(t, p256(t), "", name),
			NotAfter: now.Add(60 * 24 * time.Hour)}, []string{"max_validity", "validity"}},
		{"key usage", ca.Request{SubCAID: encipherOnly.ID, CSR: csrWith(t, p256(t), "", name)},
			[]string{"key_usages", "ecdsa-p256"}},
		{"beyond SubCA", ca.Request{SubCAID: short.ID, CSR: csrWith(t, p256(t), "", name),
			NotAfter: now.Add(48 * time.Hour)}, []string{"rule validity", "SubCA certificate's validity"}},
		{"before SubCA", ca.Request{SubCAID: short.ID, CSR: csrWith(t, p256(t), "", name),
			NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(time.Hour)},
			[]string{"rule validity"}},
		{"notAfter before notBefore", ca.Request{CSR: csrWith(t, p256(t), "", name),
			NotBefore: now.Add(time.Hour), NotAfter: now.Add(30 * time.Minute)},
			[]string{"notAfter is not after notBefore"}},
		{"expired", ca.Request{CSR: csrWith(t, p256(t), "", name),
			NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)},
			[]string{"in the past"}},
	}

	before := m.State().LastApplied()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.ChainID = env.ChainID
			_, err := m.Issuer.Issue(context.Background(), &req)
			wantRejected(t, err, tc.fragments...)
		})
	}
	if after := m.State().LastApplied(); after != before {
		t.Fatalf("rejected requests advanced the log from %d to %d", before, after)
	}
}

func TestIssue_SubjectTemplateCopied(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	subject := fsm.SubjectTemplate{
		Organization: "Example Corp", OrganizationalUnit: "Platform", Country: "DE",
		Province: "Berlin", Locality: "Berlin",
	}
	withCN := newSubCA(t, env, "named", fsm.Policy{Subject: subject})
	subject.CommonName = fsm.CommonNameOmit
	withoutCN := newSubCA(t, env, "unnamed", fsm.Policy{Subject: subject})

	csr := csrWith(t, p256(t), "API.Example.Test", "www.example.test", "api.example.test")
	csr.Subject.Organization = []string{"Requested Org"}
	issued := issueOn(t, m, &ca.Request{ChainID: env.ChainID, SubCAID: withCN.ID, CSR: csr})
	leaf := parse(t, issued.Credential.DER)
	checks := []struct {
		attr      string
		got, want []string
	}{
		{"O", leaf.Subject.Organization, []string{"Example Corp"}},
		{"OU", leaf.Subject.OrganizationalUnit, []string{"Platform"}},
		{"C", leaf.Subject.Country, []string{"DE"}},
		{"ST", leaf.Subject.Province, []string{"Berlin"}},
		{"L", leaf.Subject.Locality, []string{"Berlin"}},
		{"CN", []string{leaf.Subject.CommonName}, []string{"api.example.test"}},
		{"SAN", leaf.DNSNames, []string{"api.example.test", "www.example.test"}},
	}
	for _, c := range checks {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("subject %s %q, want %q", c.attr, c.got, c.want)
		}
	}

	leaf = parse(t, issueOn(t, m, &ca.Request{ChainID: env.ChainID, SubCAID: withoutCN.ID,
		CSR: csrWith(t, p256(t), "api.example.test", "api.example.test")}).Credential.DER)
	if leaf.Subject.CommonName != "" {
		t.Errorf("common name %q under the omit rule, want none", leaf.Subject.CommonName)
	}
	if !slices.Equal(leaf.Subject.Organization, []string{"Example Corp"}) {
		t.Errorf("organization %q, want the template's", leaf.Subject.Organization)
	}
}

func TestIssue_LeafExtensions(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	csr := csrWith(t, rsaKey(t, 2048), "", "Mixed.Example.TEST", "10.0.0.7")
	issued := issueOn(t, env.Members[0], &ca.Request{ChainID: env.ChainID, CSR: csr})
	leaf := parse(t, issued.Credential.DER)

	if string(leaf.AuthorityKeyId) != string(env.SubCA.SubjectKeyId) || len(leaf.AuthorityKeyId) == 0 {
		t.Errorf("AKI %x, want the SubCA's SKI %x", leaf.AuthorityKeyId, env.SubCA.SubjectKeyId)
	}
	if len(leaf.SubjectKeyId) != 20 {
		t.Errorf("SKI %x, want a 20-byte SHA-1 key identifier", leaf.SubjectKeyId)
	}
	if !leaf.BasicConstraintsValid || leaf.IsCA {
		t.Error("leaf lacks basic constraints with cA false")
	}
	if want := env.URLs.OCSP(); !slices.Equal(leaf.OCSPServer, want) {
		t.Errorf("AIA OCSP %v, want %v", leaf.OCSPServer, want)
	}
	if len(leaf.IssuingCertificateURL) == 0 || len(leaf.CRLDistributionPoints) == 0 {
		t.Errorf("caIssuers %v, CRL DP %v, want both",
			leaf.IssuingCertificateURL, leaf.CRLDistributionPoints)
	}
	if !slices.Equal(leaf.DNSNames, []string{"mixed.example.test"}) {
		t.Errorf("DNS SANs %v, want the lower-cased [mixed.example.test]", leaf.DNSNames)
	}
	if leaf.Subject.CommonName != "mixed.example.test" {
		t.Errorf("common name %q, want the first DNS SAN", leaf.Subject.CommonName)
	}
	wantUsage := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	if leaf.KeyUsage != wantUsage {
		t.Errorf("RSA leaf key usage %b, want digitalSignature and keyEncipherment", leaf.KeyUsage)
	}
}
