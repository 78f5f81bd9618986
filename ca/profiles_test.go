package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"anchor/ca"
	"anchor/fsm"
	"anchor/internal/testenv"
)

// lintRegistry selects the RFC 5280, 3279 and 5480 lints and the CA/Browser
// Forum TLS Baseline Requirements lints, minus ca.LintExclusions.
func lintRegistry(t *testing.T) lint.Registry {
	t.Helper()
	var excluded []string
	for name, reason := range ca.LintExclusions() {
		if lint.GlobalRegistry().ByName(name) == nil {
			t.Errorf("excluded lint %s is not a zlint lint", name)
		}
		if reason == "" {
			t.Errorf("excluded lint %s has no reason", name)
		}
		excluded = append(excluded, name)
	}
	registry, err := lint.GlobalRegistry().Filter(lint.FilterOptions{
		IncludeSources: lint.SourceList{lint.RFC5280, lint.RFC3279, lint.RFC5480,
			lint.CABFBaselineRequirements},
		ExcludeNames: excluded,
	})
	if err != nil {
		t.Fatal(err)
	}
	return registry
}

// TestProfiles_PassLints issues one certificate of every profile and lints
// it: roots, SubCAs with and without constraints, and leaves of every key
// type, extended key usage, name type and subject template.
func TestProfiles_PassLints(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	corp := newSubCA(t, env, "corp", fsm.Policy{
		ServerAuth: true, ClientAuth: true,
		NameTypes: []string{fsm.NameDNS, fsm.NameIP, fsm.NameEmail, fsm.NameURI},
		Subject: fsm.SubjectTemplate{Organization: "Example Corp", OrganizationalUnit: "Platform",
			Country: "DE", Province: "Berlin", Locality: "Berlin"},
		NameConstraints: fsm.NameConstraints{
			PermittedDNS: []string{"corp.example.test"}, ExcludedDNS: []string{"secret.corp.example.test"},
			PermittedIP: []string{"10.20.0.0/16", "fd00:20::/32"}, ExcludedIP: []string{"10.20.99.0/24"},
			PermittedEmail: []string{"corp.example.test"}, PermittedURI: []string{"corp.example.test"},
		},
	})
	clients := newSubCA(t, env, "clients", fsm.Policy{ClientAuth: true,
		Subject: fsm.SubjectTemplate{CommonName: fsm.CommonNameOmit}})
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	leaves := []struct {
		name string
		req  ca.Request
	}{
		{"server ECDSA P-256", ca.Request{
			CSR: csrWith(t, p256(t), "web.example.test", "web.example.test")}},
		{"server ECDSA P-384", ca.Request{CSR: csrWith(t, p384, "", "p384.example.test")}},
		{"server RSA-2048", ca.Request{CSR: csrWith(t, rsaKey(t, 2048), "", "rsa.example.test")}},
		{"server with IP", ca.Request{CSR: csrWith(t, p256(t), "", "ip.example.test", "10.0.0.1")}},
		{"IP only", ca.Request{CSR: csrWith(t, p256(t), "", "192.168.1.10")}},
		{"wildcard", ca.Request{CSR: csrWith(t, p256(t), "", "*.apps.example.test")}},
		{"template with every name type", ca.Request{SubCAID: corp.ID, CSR: csrWith(t, p256(t), "",
			"svc.corp.example.test", "10.20.1.2", "fd00:20::5", "ops@corp.example.test",
			"spiffe://corp.example.test/ns/web")}},
		{"client without common name", ca.Request{SubCAID: clients.ID,
			CSR: csrWith(t, p256(t), "device.example.test", "device.example.test")}},
	}
	certs := map[string][]byte{
		"root": env.Root.Raw, "default SubCA": env.SubCA.Raw,
		"constrained SubCA": corp.CertDER, "client SubCA": clients.CertDER,
	}
	for _, l := range leaves {
		req := l.req
		req.ChainID = env.ChainID
		certs["leaf "+l.name] = issueOn(t, m, &req).Credential.DER
	}

	registry := lintRegistry(t)
	for name, der := range certs {
		t.Run(name, func(t *testing.T) {
			zc, err := zx509.ParseCertificate(der)
			if err != nil {
				t.Fatalf("zcrypto parse: %v", err)
			}
			results := zlint.LintCertificateEx(zc, registry).Results
			if len(results) < 50 {
				t.Fatalf("only %d lints ran, want the RFC 5280 and Baseline Requirements sets", len(results))
			}
			for lintName, r := range results {
				if r.Status == lint.Error || r.Status == lint.Warn || r.Status == lint.Fatal {
					t.Errorf("%s: %s %s", lintName, r.Status, r.Details)
				}
			}
		})
	}
}
