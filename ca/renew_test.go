package ca_test

import (
	"bytes"
	"context"
	"testing"

	"anchor/ca"
	"anchor/fsm"
	"anchor/internal/testenv"
)

func TestRenew_KeepsKeyAndNames(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	first := issueOn(t, m, &ca.Request{ChainID: env.ChainID,
		CSR: csrWith(t, p256(t), "keep.example.test", "keep.example.test", "10.0.0.9")})

	renewed, err := m.Issuer.Renew(context.Background(), first.Credential.CertificateID)
	if err != nil {
		t.Fatal(err)
	}
	old, cur := parse(t, first.Credential.DER), parse(t, renewed.Credential.DER)
	if !bytes.Equal(old.RawSubjectPublicKeyInfo, cur.RawSubjectPublicKeyInfo) {
		t.Error("renewal changed the public key")
	}
	if renewed.Credential.CertificateID != first.Credential.CertificateID {
		t.Errorf("renewal made certificate %s, want %s", renewed.Credential.CertificateID,
			first.Credential.CertificateID)
	}
	if renewed.Credential.Serial == first.Credential.Serial {
		t.Error("renewal reused the serial")
	}
	if cur.Subject.CommonName != old.Subject.CommonName || !bytes.Equal(cur.RawIssuer, old.RawIssuer) {
		t.Errorf("renewal changed subject %q or issuer", cur.Subject.CommonName)
	}
	if len(cur.DNSNames) != 1 || len(cur.IPAddresses) != 1 {
		t.Errorf("renewed names %v %v, want the original DNS name and IP address",
			cur.DNSNames, cur.IPAddresses)
	}

	err = m.State().View(func(tx *fsm.Tx) error {
		list, err := tx.ListCertificates(fsm.CertificateFilter{ChainPrefix: env.ChainID})
		if err != nil {
			return err
		}
		if len(list) != 1 || len(list[0].Credentials) != 2 {
			t.Fatalf("listing %d certificates, want one with two credentials", len(list))
		}
		if list[0].Credentials[1].Serial != renewed.Credential.Serial {
			t.Errorf("newest credential %s, want %s",
				list[0].Credentials[1].Serial, renewed.Credential.Serial)
		}
		kp, err := tx.KeyPair(list[0].Certificate.KeyPairID)
		if err != nil {
			return err
		}
		if kp.HSMKeyID != "" || !bytes.Equal(kp.PublicKey, old.RawSubjectPublicKeyInfo) {
			t.Errorf("leaf key pair has HSM key %q, want only the public key", kp.HSMKeyID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRenew_RejectsCompromisedKey(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	issued := issueOn(t, m, &ca.Request{ChainID: env.ChainID,
		CSR: csrWith(t, p256(t), "", "lost.example.test")})
	res, err := m.Apply(context.Background(), fsm.MustCommand(fsm.CmdRevoke,
		fsm.Revoke{Serial: issued.Credential.Serial, Reason: 1}))
	if err == nil {
		err = res.Decode(nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	before := m.State().LastApplied()
	_, err = m.Issuer.Renew(context.Background(), issued.Credential.CertificateID)
	if fsm.CodeOf(err) != fsm.CodeFailedPrecondition {
		t.Fatalf("renewal after key compromise: error %v, want %s", err, fsm.CodeFailedPrecondition)
	}
	if after := m.State().LastApplied(); after != before {
		t.Fatalf("rejected renewal advanced the log from %d to %d", before, after)
	}
}

func TestIssue_ReissueChangesKey(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	first := issueOn(t, m, &ca.Request{ChainID: env.ChainID,
		CSR: csrWith(t, p256(t), "", "rekey.example.test")})
	certID := first.Credential.CertificateID

	second := issueOn(t, m, &ca.Request{ChainID: env.ChainID, CertificateID: certID,
		CSR: csrWith(t, p256(t), "", "rekey.example.test")})
	if second.Credential.CertificateID != certID {
		t.Fatalf("reissue made certificate %s, want %s", second.Credential.CertificateID, certID)
	}
	if second.Credential.KeyPairID == first.Credential.KeyPairID {
		t.Error("reissue with a new key kept the old key pair ID")
	}
	err := m.State().View(func(tx *fsm.Tx) error {
		c, err := tx.Certificate(certID)
		if err != nil {
			return err
		}
		if c.KeyPairID != second.Credential.KeyPairID || len(c.Serials) != 2 {
			t.Errorf("certificate key pair %s with %d credentials, want %s with 2",
				c.KeyPairID, len(c.Serials), second.Credential.KeyPairID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	before := m.State().LastApplied()
	_, err = m.Issuer.Issue(context.Background(), &ca.Request{
		ChainID: env.ChainID, CertificateID: certID,
		CSR: csrWith(t, p256(t), "", "other.example.test"),
	})
	wantRejected(t, err, "reissue", "rekey.example.test")
	if after := m.State().LastApplied(); after != before {
		t.Fatalf("rejected reissue advanced the log from %d to %d", before, after)
	}
}
