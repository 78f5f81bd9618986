package fsm

import "testing"

func TestNameConstraints_Check(t *testing.T) {
	nc := NameConstraints{
		PermittedDNS:   []string{"example.test", ".sub.example.org"},
		ExcludedDNS:    []string{"secret.example.test"},
		PermittedIP:    []string{"10.0.0.0/8", "fd00::/8"},
		ExcludedIP:     []string{"10.9.0.0/16"},
		PermittedEmail: []string{"example.test", ".example.org", "root@other.test"},
		ExcludedEmail:  []string{"ceo@example.test"},
		PermittedURI:   []string{".example.test"},
	}
	cases := []struct {
		name string
		rule string // empty when allowed
	}{
		{"example.test", ""},
		{"www.example.test", ""},
		{"wwwexample.test", "name_constraints.permitted_dns"},
		{"sub.example.org", "name_constraints.permitted_dns"},
		{"a.sub.example.org", ""},
		{"secret.example.test", "name_constraints.excluded_dns"},
		{"x.secret.example.test", "name_constraints.excluded_dns"},
		{"*.example.test", "name_constraints.excluded_dns"},
		{"*.www.example.test", ""},
		{"10.1.2.3", ""},
		{"10.9.1.1", "name_constraints.excluded_ip"},
		{"192.168.0.1", "name_constraints.permitted_ip"},
		{"fd00::1", ""},
		{"2001:db8::1", "name_constraints.permitted_ip"},
		{"a@example.test", ""},
		{"a@mail.example.test", "name_constraints.permitted_email"},
		{"a@mail.example.org", ""},
		{"a@example.org", "name_constraints.permitted_email"},
		{"root@other.test", ""},
		{"user@other.test", "name_constraints.permitted_email"},
		{"ceo@example.test", "name_constraints.excluded_email"},
		{"spiffe://app.example.test/x", ""},
		{"spiffe://example.test/x", "name_constraints.permitted_uri"},
		{"https://10.1.2.3/x", "name_constraints.permitted_uri"},
	}
	for _, tc := range cases {
		v := nc.Check(tc.name)
		switch {
		case tc.rule == "" && v != nil:
			t.Errorf("%s: rejected by %s (%s), want allowed", tc.name, v.Rule, v.Constraint)
		case tc.rule != "" && v == nil:
			t.Errorf("%s: allowed, want rejected by %s", tc.name, tc.rule)
		case tc.rule != "" && v.Rule != tc.rule:
			t.Errorf("%s: rejected by %s, want %s", tc.name, v.Rule, tc.rule)
		}
	}
}

func TestNameConstraints_CheckIdentifierPrefix(t *testing.T) {
	nc := NameConstraints{PermittedIP: []string{"10.0.0.0/8"}, ExcludedIP: []string{"10.9.0.0/16"}}
	cases := []struct{ prefix, rule string }{
		{"10.1.0.0/16", ""},
		{"10.0.0.0/8", "name_constraints.excluded_ip"},
		{"10.9.1.0/24", "name_constraints.excluded_ip"},
		{"0.0.0.0/0", "name_constraints.excluded_ip"},
		{"11.0.0.0/16", "name_constraints.permitted_ip"},
	}
	for _, tc := range cases {
		v := nc.CheckIdentifier(tc.prefix)
		got := ""
		if v != nil {
			got = v.Rule
		}
		if got != tc.rule {
			t.Errorf("%s: rule %q, want %q", tc.prefix, got, tc.rule)
		}
	}
}

func TestNormalizeName_Kinds(t *testing.T) {
	cases := []struct{ in, want string }{
		{"WWW.Example.Test.", "www.example.test"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"Alice@Example.Test", "alice@example.test"},
		{"SPIFFE://Corp.Example.Test/Path", "spiffe://corp.example.test/Path"},
	}
	for _, tc := range cases {
		got, err := NormalizeName(NameKind(tc.in), tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	invalid := []string{"a..b", "-a.test", "a@", "a b@example.test", "urn:x:y", "https://u@h.test/"}
	for _, bad := range invalid {
		if got, err := NormalizeName(NameKind(bad), bad); err == nil {
			t.Errorf("NormalizeName(%q) = %q, want an error", bad, got)
		}
	}
}

func TestPolicy_ValidateNamesField(t *testing.T) {
	cases := []struct {
		name  string
		p     Policy
		field string
	}{
		{"negative validity", Policy{MaxValidity: -1}, "max_validity"},
		{"RSA size not a multiple of 8", Policy{KeyTypes: []string{"rsa-2050"}}, "key_types"},
		{"unknown key usage", Policy{KeyUsages: []string{"cert_sign"}}, "key_usages"},
		{"lower-case country", Policy{Subject: SubjectTemplate{Country: "de"}}, "subject.c"},
		{"organization without place",
			Policy{Subject: SubjectTemplate{Organization: "X", Country: "DE"}}, "subject.l"},
		{"unit without organization",
			Policy{Subject: SubjectTemplate{OrganizationalUnit: "X"}}, "subject.o"},
		{"unknown CN rule", Policy{Subject: SubjectTemplate{CommonName: "first"}}, "subject.cn"},
		{"upper-case DNS constraint",
			Policy{NameConstraints: NameConstraints{ExcludedDNS: []string{"A.test"}}},
			"name_constraints.excluded_dns"},
		{"email constraint with name",
			Policy{NameConstraints: NameConstraints{PermittedEmail: []string{"@x.test"}}},
			"name_constraints.permitted_email"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.p.Validate(), CodeInvalidArgument, tc.field)
		})
	}
	ok := Policy{KeyTypes: []string{"rsa-3072", KeyTypeEd25519}, Subject: SubjectTemplate{
		Organization: "Example", Country: "DE", Locality: "Berlin", CommonName: CommonNameOmit}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid policy rejected: %v", err)
	}
}
