package ca_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"anchor/ca"
	"anchor/fsm"
	"anchor/internal/testenv"
)

func TestCreateSubCA_MakeDefault(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	sub := newSubCAWith(t, env, ca.SubCARequest{Name: "second", MakeDefault: true,
		Policy: fsm.Policy{ClientAuth: true}})

	out, err := opensslVerify(t, t.TempDir(), env.Root.Raw, env.Root.Raw, sub.CertDER)
	if err != nil {
		t.Fatalf("openssl verify of the SubCA against the root: %v\n%s", err, out)
	}
	cert := certOf(t, sub)
	if len(cert.AuthorityKeyId) == 0 || !bytes.Equal(cert.AuthorityKeyId, env.Root.SubjectKeyId) {
		t.Errorf("SubCA AKI %x, want the root's SKI %x", cert.AuthorityKeyId, env.Root.SubjectKeyId)
	}
	if len(cert.OCSPServer) == 0 || len(cert.IssuingCertificateURL) == 0 ||
		len(cert.CRLDistributionPoints) == 0 {
		t.Errorf("SubCA lacks AIA or CRL DP: OCSP %v, caIssuers %v, CRL DP %v",
			cert.OCSPServer, cert.IssuingCertificateURL, cert.CRLDistributionPoints)
	}

	issued := issueOn(t, m, &ca.Request{ChainID: env.ChainID,
		CSR: csrWith(t, p256(t), "", "c.example.test")})
	if issued.Credential.CAID != sub.ID {
		t.Errorf("default issuance used SubCA %s, want the new default %s",
			issued.Credential.CAID, sub.ID)
	}
	err = m.State().View(func(tx *fsm.Tx) error {
		chain, err := tx.Chain(env.ChainID)
		if err != nil {
			return err
		}
		if len(chain.SubCAIDs) != 2 || chain.DefaultSubCAID != sub.ID {
			t.Errorf("chain SubCAs %v with default %s, want two with default %s",
				chain.SubCAIDs, chain.DefaultSubCAID, sub.ID)
		}
		kp, err := tx.KeyPair(fsm.KeyPairID(cert.RawSubjectPublicKeyInfo))
		if err != nil {
			return err
		}
		if kp.HSMKeyID != sub.KeyID {
			t.Errorf("SubCA key pair references HSM key %q, want %q", kp.HSMKeyID, sub.KeyID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCreateSubCA_InvalidPolicy(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	cases := []struct {
		name   string
		policy fsm.Policy
		field  string
	}{
		{"unknown key type", fsm.Policy{KeyTypes: []string{"rsa-1024"}}, "key_types"},
		{"organization without country", fsm.Policy{Subject: fsm.SubjectTemplate{
			Organization: "Example", Locality: "Berlin"}}, "subject.c"},
		{"placeholder value", fsm.Policy{Subject: fsm.SubjectTemplate{
			Organization: "-", Country: "DE", Locality: "Berlin"}}, "subject.o"},
		{"non-canonical prefix", fsm.Policy{NameConstraints: fsm.NameConstraints{
			PermittedIP: []string{"10.1.2.3/8"}}}, "name_constraints.permitted_ip"},
		{"wildcard constraint", fsm.Policy{NameConstraints: fsm.NameConstraints{
			PermittedDNS: []string{"*.example.test"}}}, "name_constraints.permitted_dns"},
		{"unknown name type", fsm.Policy{NameTypes: []string{"dirname"}}, "name_types"},
	}
	before := m.State().LastApplied()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ca.CreateSubCA(context.Background(), m.Cluster, m.HSM, m.Cluster.ID(),
				ca.SubCARequest{ChainID: env.ChainID, Name: "bad", URLs: env.URLs, Policy: tc.policy})
			wantRejected(t, err, tc.field)
		})
	}
	if after := m.State().LastApplied(); after != before {
		t.Fatalf("rejected SubCAs advanced the log from %d to %d", before, after)
	}

	_, err := ca.CreateSubCA(context.Background(), m.Cluster, m.HSM, m.Cluster.ID(),
		ca.SubCARequest{ChainID: env.ChainID, Name: "issuing", URLs: env.URLs})
	if fsm.CodeOf(err) != fsm.CodeAlreadyExists {
		t.Fatalf("duplicate SubCA name: error %v, want %s", err, fsm.CodeAlreadyExists)
	}
	if !strings.Contains(err.Error(), "issuing") {
		t.Errorf("duplicate SubCA error %q does not name the SubCA", err)
	}
}
