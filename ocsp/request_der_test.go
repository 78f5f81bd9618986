package ocsp

import (
	"bytes"
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"

	xocsp "golang.org/x/crypto/ocsp"
)

// requestWithHash is sampleRequest with another CertID hash algorithm.
func requestWithHash(t testing.TB, hash crypto.Hash) []byte {
	t.Helper()
	der, err := (&xocsp.Request{
		HashAlgorithm:  hash,
		IssuerNameHash: bytes.Repeat([]byte{1}, hash.Size()),
		IssuerKeyHash:  bytes.Repeat([]byte{2}, hash.Size()),
		SerialNumber:   new(big.Int).Lsh(big.NewInt(0xabcdef), 100),
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// withoutHashParameters re-encodes a request without the NULL parameters of
// its CertID hash algorithm.
func withoutHashParameters(t testing.TB, der []byte) []byte {
	t.Helper()
	var raw ocspRequest
	if _, err := asn1.Unmarshal(der, &raw); err != nil {
		t.Fatal(err)
	}
	raw.TBSRequest.RequestList[0].Cert.HashAlgorithm.Parameters = asn1.RawValue{}
	out, err := asn1.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseCommonRequest_TakesClientEncodings(t *testing.T) {
	single := sampleRequest(t)
	nonce := nonceExtension(t, 32)
	cases := []struct {
		name string
		der  []byte
	}{
		{"SHA-1", single},
		{"SHA-256", requestWithHash(t, crypto.SHA256)},
		{"SHA-384", requestWithHash(t, crypto.SHA384)},
		{"SHA-512", requestWithHash(t, crypto.SHA512)},
		{"absent hash parameters", withoutHashParameters(t, single)},
		{"nonce", buildRequest(t, single, 1, nonce)},
		{"critical nonce", buildRequest(t, single, 1,
			pkix.Extension{Id: oidNonce, Critical: true, Value: nonce.Value})},
		{"two nonces", buildRequest(t, single, 1, nonce, nonce)},
	}
	for _, c := range cases {
		fast, ok := parseCommonRequest(c.der)
		if !ok {
			t.Errorf("%s: parseCommonRequest rejected it, want the fast path", c.name)
			continue
		}
		requireSameFields(t, c.name, fast, c.der)
	}
}

func TestParseCommonRequest_LeavesOthersToASN1(t *testing.T) {
	single := sampleRequest(t)
	negative, err := (&xocsp.Request{
		HashAlgorithm:  crypto.SHA1,
		IssuerNameHash: bytes.Repeat([]byte{1}, 20),
		IssuerKeyHash:  bytes.Repeat([]byte{2}, 20),
		SerialNumber:   big.NewInt(-5),
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		der  []byte
	}{
		{"two certificates", buildRequest(t, single, 2)},
		{"no certificates", buildRequest(t, single, 0)},
		{"trailing bytes", append(append([]byte{}, single...), 0)},
		{"negative serial", negative},
		{"other extension", buildRequest(t, single, 1,
			pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{5, 0}})},
	}
	for _, c := range cases {
		if _, ok := parseCommonRequest(c.der); ok {
			t.Errorf("%s: parseCommonRequest accepted it, want encoding/asn1 to decide", c.name)
		}
	}
}

// FuzzParseCommonRequest checks that every request the fast path accepts
// decodes to the same fields with encoding/asn1, so that parseRequest
// responds as it would without the fast path.
func FuzzParseCommonRequest(f *testing.F) {
	single := sampleRequest(f)
	nonce := nonceExtension(f, 16)
	for _, der := range [][]byte{
		single,
		requestWithHash(f, crypto.SHA256),
		requestWithHash(f, crypto.SHA512),
		withoutHashParameters(f, single),
		buildRequest(f, single, 1, nonce),
		buildRequest(f, single, 1, pkix.Extension{Id: oidNonce, Critical: true, Value: nonce.Value}),
		buildRequest(f, single, 2, nonce),
	} {
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		if fast, ok := parseCommonRequest(der); ok {
			requireSameFields(t, "fuzz input", fast, der)
		}
	})
}

// requireSameFields fails the test unless unmarshalRequest decodes der to
// the fields of fast.
func requireSameFields(t *testing.T, name string, fast *tbsRequest, der []byte) {
	t.Helper()
	slow, err := unmarshalRequest(der)
	if err != nil {
		t.Fatalf("%s (%x): fast path accepted what encoding/asn1 rejects: %v", name, der, err)
	}
	if fast.Version != slow.Version || len(fast.RequestList) != len(slow.RequestList) {
		t.Fatalf("%s (%x): version %d with %d certificates, encoding/asn1 %d with %d", name, der,
			fast.Version, len(fast.RequestList), slow.Version, len(slow.RequestList))
	}
	a, b := &fast.RequestList[0].Cert, &slow.RequestList[0].Cert
	if !a.HashAlgorithm.Algorithm.Equal(b.HashAlgorithm.Algorithm) {
		t.Errorf("%s (%x): hash %s, encoding/asn1 %s", name, der,
			a.HashAlgorithm.Algorithm, b.HashAlgorithm.Algorithm)
	}
	if !bytes.Equal(a.NameHash, b.NameHash) || !bytes.Equal(a.IssuerKeyHash, b.IssuerKeyHash) {
		t.Errorf("%s (%x): issuer hashes differ from encoding/asn1's", name, der)
	}
	if a.SerialNumber.Cmp(b.SerialNumber) != 0 {
		t.Errorf("%s (%x): serial %v, encoding/asn1 %v", name, der, a.SerialNumber, b.SerialNumber)
	}
	if len(fast.RequestExtensions) != len(slow.RequestExtensions) {
		t.Fatalf("%s (%x): %d extensions, encoding/asn1 %d", name, der,
			len(fast.RequestExtensions), len(slow.RequestExtensions))
	}
	for i, x := range fast.RequestExtensions {
		y := slow.RequestExtensions[i]
		if !x.Id.Equal(y.Id) || x.Critical != y.Critical || !bytes.Equal(x.Value, y.Value) {
			t.Errorf("%s (%x): extension %d is %+v, encoding/asn1 %+v", name, der, i, x, y)
		}
	}
}

func TestParseCommonRequest_TakesOpenSSLRequests(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("openssl.example.net", randomSerial())
	for _, args := range [][]string{{"-no_nonce"}, {}, {"-no_nonce", "-sha256"}, {"-sha256"}} {
		der := p.opensslRequest(leaf, args...)
		fast, ok := parseCommonRequest(der)
		if !ok {
			t.Errorf("openssl request %v: parseCommonRequest rejected it, want the fast path", args)
			continue
		}
		requireSameFields(t, "openssl request", fast, der)
	}
}
