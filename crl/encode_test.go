package crl

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// testIssuer returns a self-signed CA certificate for key.
func testIssuer(t *testing.T, key crypto.Signer) *x509.Certificate {
	t.Helper()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Encoding SubCA", Organization: []string{"Anchor"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestEncodeTBS_MatchesX509 encodes CRLs with encodeTBS and with
// x509.CreateRevocationList and compares the TBSCertList byte for byte. The
// cases cover every CA key type, dates on both sides of 2050, entries with
// and without a reason code, and serials that need a leading zero.
func TestEncodeTBS_MatchesX509(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	keys := map[string]crypto.Signer{"P-256": p256, "P-384": p384, "RSA-2048": rsa2048, "Ed25519": ed}

	base := time.Date(2026, 12, 4, 10, 11, 12, 0, time.UTC)
	highBit := new(big.Int).Lsh(big.NewInt(1), 127) // DER needs a leading zero octet
	entries := []x509.RevocationListEntry{
		{SerialNumber: big.NewInt(1), RevocationTime: base.Add(-time.Hour), ReasonCode: 0},
		{SerialNumber: highBit, RevocationTime: base.Add(-2 * time.Hour), ReasonCode: 1},
		{SerialNumber: big.NewInt(0x7f), RevocationTime: time.Date(2051, 1, 1, 0, 0, 0, 0, time.UTC), ReasonCode: 10},
		{SerialNumber: big.NewInt(0x80), RevocationTime: time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), ReasonCode: 4},
	}
	idp := pkix.Extension{Id: []int{2, 5, 29, 28}, Critical: true, Value: []byte{0x30, 0x03, 0x81, 0x01, 0xff}}
	cases := []struct {
		name       string
		number     *big.Int
		next       time.Time
		entries    []x509.RevocationListEntry
		extensions []pkix.Extension
	}{
		{name: "empty", number: big.NewInt(1), next: base.Add(12 * time.Hour)},
		{name: "entries", number: big.NewInt(255), next: base.Add(12 * time.Hour), entries: entries,
			extensions: []pkix.Extension{idp}},
		{name: "next update after 2049", number: new(big.Int).Lsh(big.NewInt(1), 150),
			next: time.Date(2050, 6, 1, 0, 0, 0, 0, time.UTC), entries: entries[:2],
			extensions: []pkix.Extension{idp, {Id: []int{2, 5, 29, 27}, Critical: true, Value: []byte{0x02, 0x01, 0x05}}}},
	}
	for keyName, key := range keys {
		issuer := testIssuer(t, key)
		alg, err := signatureAlgorithmFor(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			t.Run(keyName+"/"+c.name, func(t *testing.T) {
				want, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
					Number: c.number, ThisUpdate: base, NextUpdate: c.next,
					RevokedCertificateEntries: c.entries, ExtraExtensions: c.extensions,
				}, issuer, key)
				if err != nil {
					t.Fatal(err)
				}
				wantRL, err := x509.ParseRevocationList(want)
				if err != nil {
					t.Fatal(err)
				}
				tbs, err := encodeTBS(&tbsFields{
					issuer: issuer, number: c.number, thisUpdate: base, nextUpdate: c.next,
					entries: c.entries, extensions: c.extensions,
				}, alg)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(tbs, wantRL.RawTBSRevocationList) {
					t.Fatalf("TBSCertList differs from crypto/x509's\n got %x\nwant %x", tbs, wantRL.RawTBSRevocationList)
				}
				der, err := signTBS(tbs, alg, key)
				if err != nil {
					t.Fatal(err)
				}
				rl, err := x509.ParseRevocationList(der)
				if err != nil {
					t.Fatalf("parse the signed CRL: %v", err)
				}
				if err := rl.CheckSignatureFrom(issuer); err != nil {
					t.Fatalf("signature: %v", err)
				}
				if rl.SignatureAlgorithm != alg.x509 || rl.SignatureAlgorithm != wantRL.SignatureAlgorithm {
					t.Errorf("signature algorithm %v, want %v", rl.SignatureAlgorithm, wantRL.SignatureAlgorithm)
				}
			})
		}
	}
}

// TestSignTBS_RejectsBadSignature gives signTBS a signer whose signatures
// come from another key. signTBS must return an error instead of a CRL.
func TestSignTBS_RejectsBadSignature(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issuer := testIssuer(t, key)
	alg, _ := signatureAlgorithmFor(key.Public())
	now := time.Now().UTC().Truncate(time.Second)
	tbs, err := encodeTBS(&tbsFields{issuer: issuer, number: big.NewInt(1), thisUpdate: now, nextUpdate: now.Add(time.Hour)}, alg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signTBS(tbs, alg, mismatchedSigner{Signer: other, pub: key.Public()}); err == nil {
		t.Fatal("signTBS accepted a signature made by another key")
	}
}

type mismatchedSigner struct {
	crypto.Signer
	pub crypto.PublicKey
}

func (s mismatchedSigner) Public() crypto.PublicKey { return s.pub }

// TestEncodeTBS_RejectsInvalidInput checks the conditions that
// x509.CreateRevocationList also rejects.
func TestEncodeTBS_RejectsInvalidInput(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issuer := testIssuer(t, key)
	alg, _ := signatureAlgorithmFor(key.Public())
	now := time.Now().UTC().Truncate(time.Second)
	noSKI := *issuer
	noSKI.SubjectKeyId = nil
	noCRLSign := *issuer
	noCRLSign.KeyUsage = x509.KeyUsageCertSign
	for name, f := range map[string]tbsFields{
		"no subject key identifier": {issuer: &noSKI, number: big.NewInt(1), thisUpdate: now, nextUpdate: now.Add(time.Hour)},
		"no cRLSign":                {issuer: &noCRLSign, number: big.NewInt(1), thisUpdate: now, nextUpdate: now.Add(time.Hour)},
		"number over 20 octets":     {issuer: issuer, number: new(big.Int).Lsh(big.NewInt(1), 159), thisUpdate: now, nextUpdate: now.Add(time.Hour)},
		"negative number":           {issuer: issuer, number: big.NewInt(-1), thisUpdate: now, nextUpdate: now.Add(time.Hour)},
		"next before this":          {issuer: issuer, number: big.NewInt(1), thisUpdate: now, nextUpdate: now.Add(-time.Second)},
		"entry without serial": {issuer: issuer, number: big.NewInt(1), thisUpdate: now, nextUpdate: now.Add(time.Hour),
			entries: []x509.RevocationListEntry{{RevocationTime: now}}},
		"entry without time": {issuer: issuer, number: big.NewInt(1), thisUpdate: now, nextUpdate: now.Add(time.Hour),
			entries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(5)}}},
	} {
		if _, err := encodeTBS(&f, alg); err == nil {
			t.Errorf("%s: encoded without an error", name)
		}
	}
}
