package ca_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"anchor/ca"
	"anchor/fsm"
	"anchor/internal/testenv"
)

// validityTags returns the ASN.1 tags of a certificate's notBefore and
// notAfter: 0x17 for UTCTime, 0x18 for GeneralizedTime.
func validityTags(t *testing.T, der []byte) (notBefore, notAfter cbasn1.Tag) {
	t.Helper()
	in := cryptobyte.String(der)
	var cert, tbs, validity cryptobyte.String
	ok := in.ReadASN1(&cert, cbasn1.SEQUENCE) &&
		cert.ReadASN1(&tbs, cbasn1.SEQUENCE) &&
		tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) &&
		tbs.SkipASN1(cbasn1.INTEGER) && // serialNumber
		tbs.SkipASN1(cbasn1.SEQUENCE) && // signature
		tbs.SkipASN1(cbasn1.SEQUENCE) && // issuer
		tbs.ReadASN1(&validity, cbasn1.SEQUENCE)
	if !ok {
		t.Fatal("cannot walk the certificate's DER to its validity")
	}
	var skipped cryptobyte.String
	if !validity.ReadAnyASN1(&skipped, &notBefore) || !validity.ReadAnyASN1(&skipped, &notAfter) {
		t.Fatal("cannot read the validity times")
	}
	return notBefore, notAfter
}

func TestIssue_GeneralizedTimeFrom2050(t *testing.T) {
	env := testenv.New(t, 1, testenv.Options{})
	m := env.Members[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const year = 365 * 24 * time.Hour
	chain, err := ca.CreateChain(ctx, m.Cluster, m.HSM, m.Cluster.ID(), ca.ChainRequest{
		Org: testenv.Org, Realm: testenv.Realm, Name: "long", URLs: env.URLs,
		RootValidity: 40 * year, SubCAValidity: 35 * year,
		Policy: fsm.Policy{MaxValidity: 30 * year},
	})
	if err != nil {
		t.Fatal(err)
	}
	var root, sub *fsm.CA
	err = m.State().View(func(tx *fsm.Tx) error {
		if root, err = tx.CA(chain.RootCAID); err != nil {
			return err
		}
		sub, err = tx.CA(chain.DefaultSubCAID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	late := time.Date(2051, time.June, 1, 0, 0, 0, 0, time.UTC)
	early := time.Date(2049, time.December, 31, 23, 59, 59, 0, time.UTC)
	lateLeaf := issueOn(t, m, &ca.Request{ChainID: chain.ID, NotAfter: late,
		CSR: csrWith(t, p256(t), "", "late.example.test")}).Credential.DER
	earlyLeaf := issueOn(t, m, &ca.Request{ChainID: chain.ID, NotAfter: early,
		CSR: csrWith(t, p256(t), "", "early.example.test")}).Credential.DER

	cases := []struct {
		name          string
		der           []byte
		wantNotAfter  cbasn1.Tag
		wantEndString string
	}{
		{"root", root.CertDER, cbasn1.GeneralizedTime, ""},
		{"SubCA", sub.CertDER, cbasn1.GeneralizedTime, ""},
		{"leaf ending 2051", lateLeaf, cbasn1.GeneralizedTime, "notAfter=Jun  1 00:00:00 2051 GMT"},
		{"leaf ending 2049", earlyLeaf, cbasn1.UTCTime, "notAfter=Dec 31 23:59:59 2049 GMT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			notBefore, notAfter := validityTags(t, tc.der)
			if notBefore != cbasn1.UTCTime {
				t.Errorf("notBefore tag %#x, want UTCTime (0x17) for a date before 2050", notBefore)
			}
			if notAfter != tc.wantNotAfter {
				t.Errorf("notAfter tag %#x, want %#x", notAfter, tc.wantNotAfter)
			}
			path := t.TempDir() + "/cert.pem"
			writePEM(t, path, tc.der)
			out, err := exec.Command("openssl", "x509", "-noout", "-enddate", "-in", path).CombinedOutput()
			if err != nil {
				t.Fatalf("openssl x509 -enddate: %v\n%s", err, out)
			}
			if tc.wantEndString != "" && strings.TrimSpace(string(out)) != tc.wantEndString {
				t.Errorf("openssl printed %q, want %q", strings.TrimSpace(string(out)), tc.wantEndString)
			}
		})
	}
	if out, err := opensslVerify(t, t.TempDir(), root.CertDER, sub.CertDER, lateLeaf); err != nil {
		t.Errorf("openssl verify of the leaf ending 2051: %v\n%s", err, out)
	}
}
