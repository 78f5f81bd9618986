package ca_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"anchor/ca"
	"anchor/fsm"
	"anchor/internal/testenv"
)

// corpPolicy constrains DNS names, IP addresses and email addresses.
func corpPolicy() fsm.Policy {
	return fsm.Policy{
		ServerAuth: true, ClientAuth: true,
		NameTypes: []string{fsm.NameDNS, fsm.NameIP, fsm.NameEmail},
		NameConstraints: fsm.NameConstraints{
			PermittedDNS:   []string{"corp.example.test"},
			ExcludedDNS:    []string{"secret.corp.example.test"},
			PermittedIP:    []string{"10.20.0.0/16"},
			ExcludedIP:     []string{"10.20.99.0/24"},
			PermittedEmail: []string{"corp.example.test"},
			ExcludedEmail:  []string{"ceo@corp.example.test"},
		},
	}
}

func TestCreateSubCA_EncodesNameConstraints(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	sub := newSubCA(t, env, "corp", corpPolicy())
	cert := certOf(t, sub)

	if !cert.PermittedDNSDomainsCritical {
		t.Error("name constraints extension is not critical")
	}
	checks := []struct {
		field     string
		got, want []string
	}{
		{"permitted DNS", cert.PermittedDNSDomains, []string{"corp.example.test"}},
		{"excluded DNS", cert.ExcludedDNSDomains, []string{"secret.corp.example.test"}},
		{"permitted email", cert.PermittedEmailAddresses, []string{"corp.example.test"}},
		{"excluded email", cert.ExcludedEmailAddresses, []string{"ceo@corp.example.test"}},
		{"permitted IP", ipNetStrings(cert.PermittedIPRanges), []string{"10.20.0.0/16"}},
		{"excluded IP", ipNetStrings(cert.ExcludedIPRanges), []string{"10.20.99.0/24"}},
	}
	for _, c := range checks {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: %v, want %v", c.field, c.got, c.want)
		}
	}
	if !cert.IsCA || cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		t.Errorf("SubCA basic constraints: CA %v, path length %d (zero %v), want CA with path length 0",
			cert.IsCA, cert.MaxPathLen, cert.MaxPathLenZero)
	}

	dir := t.TempDir()
	writePEM(t, dir+"/sub.pem", sub.CertDER)
	out, err := exec.Command("openssl", "x509", "-noout", "-text", "-in", dir+"/sub.pem").
		CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509 -text: %v\n%s", err, out)
	}
	for _, want := range []string{
		"X509v3 Name Constraints: critical", "DNS:corp.example.test", "DNS:secret.corp.example.test",
		"IP:10.20.0.0/255.255.0.0", "IP:10.20.99.0/255.255.255.0", "email:corp.example.test",
		"email:ceo@corp.example.test", "pathlen:0",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("openssl x509 -text of the SubCA lacks %q", want)
		}
	}
}

func ipNetStrings(nets []*net.IPNet) []string {
	var out []string
	for _, n := range nets {
		out = append(out, n.String())
	}
	return out
}

func TestIssue_NameConstraintsEnforced(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	sub := newSubCA(t, env, "corp", corpPolicy())
	dir := t.TempDir()

	accepted := []string{
		"corp.example.test", "www.corp.example.test", "10.20.1.1", "alice@corp.example.test",
	}
	for _, name := range accepted {
		issued := issueOn(t, m, &ca.Request{ChainID: env.ChainID, SubCAID: sub.ID,
			CSR: csrWith(t, p256(t), "", name)})
		out, err := opensslVerify(t, dir, env.Root.Raw, sub.CertDER, issued.Credential.DER)
		if err != nil {
			t.Errorf("openssl verify of the leaf for %s: %v\n%s", name, err, out)
		}
	}

	rejected := []struct{ name, rule string }{
		{"www.other.test", "name_constraints.permitted_dns"},
		{"db.secret.corp.example.test", "name_constraints.excluded_dns"},
		{"*.corp.example.test", "name_constraints.excluded_dns"},
		{"10.30.0.1", "name_constraints.permitted_ip"},
		{"10.20.99.5", "name_constraints.excluded_ip"},
		{"fd00::1", "name_constraints.permitted_ip"},
		{"bob@other.test", "name_constraints.permitted_email"},
		{"ceo@corp.example.test", "name_constraints.excluded_email"},
	}
	before := m.State().LastApplied()
	for _, tc := range rejected {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Issuer.Issue(context.Background(), &ca.Request{ChainID: env.ChainID,
				SubCAID: sub.ID, CSR: csrWith(t, p256(t), "", "www.corp.example.test", tc.name)})
			wantRejected(t, err, tc.rule, tc.name, sub.ID)
		})
	}
	if after := m.State().LastApplied(); after != before {
		t.Fatalf("rejected requests advanced the log from %d to %d", before, after)
	}
}

// TestSubCA_ConstraintsBindRelyingParties signs a leaf outside the
// constraints with the SubCA key directly, bypassing the issuer, and
// expects openssl to reject it: the constraints are in the certificate,
// not only in the issuer's checks.
func TestSubCA_ConstraintsBindRelyingParties(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	sub := newSubCA(t, env, "corp", corpPolicy())
	signer, err := env.Members[0].HSM.Signer(sub.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	key := p256(t)
	for _, tc := range []struct {
		name string
		tmpl x509.Certificate
	}{
		{"DNS", x509.Certificate{DNSNames: []string{"www.other.test"}}},
		{"IP", x509.Certificate{IPAddresses: []net.IP{net.ParseIP("10.20.99.1")}}},
		{"email", x509.Certificate{EmailAddresses: []string{"eve@other.test"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := tc.tmpl
			tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
			tmpl.Subject = pkix.Name{}
			tmpl.NotBefore = time.Now().Add(-time.Minute)
			tmpl.NotAfter = time.Now().Add(time.Hour)
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			der, err := x509.CreateCertificate(rand.Reader, &tmpl, certOf(t, sub), key.Public(), signer)
			if err != nil {
				t.Fatal(err)
			}
			out, err := opensslVerify(t, t.TempDir(), env.Root.Raw, sub.CertDER, der)
			if err == nil {
				t.Fatalf("openssl verify accepted a leaf outside the name constraints:\n%s", out)
			}
			if !strings.Contains(out, "subtree violation") {
				t.Errorf("openssl verify failed for another reason than the name constraints:\n%s", out)
			}
		})
	}
}
