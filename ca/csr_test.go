package ca_test

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"anchor/ca"
)

func TestParseCSR_RejectsMalformedInput(t *testing.T) {
	good := csrWith(t, p256(t), "", "a.example.test").Raw
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-1] ^= 0xff
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good})
	cases := []struct {
		name  string
		input []byte
		want  string
	}{
		{"empty", nil, "malformed CSR"},
		{"garbage", []byte("not a certificate request"), "malformed CSR"},
		{"truncated", good[:len(good)/2], "malformed CSR"},
		{"trailing data", append(append([]byte(nil), good...), 0), "malformed CSR"},
		{"broken PEM", []byte("-----BEGIN CERTIFICATE REQUEST-----\n!!!\n"), "invalid PEM"},
		{"wrong PEM type", certPEM, `"CERTIFICATE" is not a CERTIFICATE REQUEST`},
		{"bad signature", tampered, "signature does not verify"},
		{"too large", make([]byte, 65<<10), "exceeds the limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ca.ParseCSR(tc.input)
			wantRejected(t, err, tc.want)
		})
	}
}

func TestParseCSR_AcceptsDERAndPEM(t *testing.T) {
	der := csrWith(t, p256(t), "", "a.example.test").Raw
	for name, input := range map[string][]byte{
		"DER":        der,
		"PEM":        pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
		"legacy PEM": pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: der}),
	} {
		csr, err := ca.ParseCSR(input)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(csr.DNSNames) != 1 || csr.DNSNames[0] != "a.example.test" {
			t.Errorf("%s: DNS names %v", name, csr.DNSNames)
		}
	}
}

// FuzzParseCSR checks that arbitrary input never panics and that anything
// accepted is a CSR whose signature verifies.
func FuzzParseCSR(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMA==\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ca.ParseCSR(data)
		if err != nil {
			if !strings.Contains(err.Error(), "CSR") {
				t.Fatalf("error %q does not say that the CSR is at fault", err)
			}
			return
		}
		if err := csr.CheckSignature(); err != nil {
			t.Fatalf("accepted a CSR whose signature does not verify: %v", err)
		}
		if _, err := x509.ParseCertificateRequest(csr.Raw); err != nil {
			t.Fatalf("accepted CSR does not parse again: %v", err)
		}
	})
}
