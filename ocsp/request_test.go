package ocsp

import (
	"bytes"
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"

	xocsp "golang.org/x/crypto/ocsp"
)

// buildRequest re-encodes a single-certificate request with copies of its
// Request and the given requestExtensions.
func buildRequest(t testing.TB, single []byte, copies int, exts ...pkix.Extension) []byte {
	t.Helper()
	var raw ocspRequest
	if _, err := asn1.Unmarshal(single, &raw); err != nil {
		t.Fatal(err)
	}
	var list []singleRequest
	for range copies {
		list = append(list, raw.TBSRequest.RequestList[0])
	}
	der, err := asn1.Marshal(ocspRequest{
		TBSRequest: tbsRequest{RequestList: list, RequestExtensions: exts},
	})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// sampleRequest is a SHA-1 request for serial 0x1234 of a made-up issuer.
func sampleRequest(t testing.TB) []byte {
	t.Helper()
	der, err := (&xocsp.Request{
		HashAlgorithm:  crypto.SHA1,
		IssuerNameHash: bytes.Repeat([]byte{1}, 20),
		IssuerKeyHash:  bytes.Repeat([]byte{2}, 20),
		SerialNumber:   big.NewInt(0x1234),
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func nonceExtension(t testing.TB, n int) pkix.Extension {
	t.Helper()
	value, err := asn1.Marshal(bytes.Repeat([]byte{0xab}, n))
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oidNonce, Value: value}
}

func TestParseRequest_Accepts(t *testing.T) {
	single := sampleRequest(t)
	cases := []struct {
		name      string
		der       []byte
		wantNonce bool
	}{
		{"no extensions", single, false},
		{"nonce of 1 octet", buildRequest(t, single, 1, nonceExtension(t, 1)), true},
		{"nonce of 128 octets", buildRequest(t, single, 1, nonceExtension(t, 128)), true},
		{"bare nonce of RFC 2560", buildRequest(t, single, 1,
			pkix.Extension{Id: oidNonce, Value: []byte("0123456789abcdef")}), true},
		{"unknown non-critical extension", buildRequest(t, single, 1,
			pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{5, 0}}), false},
	}
	for _, c := range cases {
		req, err := parseRequest(c.der)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if (req.nonce != nil) != c.wantNonce {
			t.Errorf("%s: nonce found %v, want %v", c.name, req.nonce != nil, c.wantNonce)
		}
		if req.SerialNumber.Int64() != 0x1234 {
			t.Errorf("%s: serial %v, want 0x1234", c.name, req.SerialNumber)
		}
	}
}

func TestParseRequest_RejectsMalformed(t *testing.T) {
	single := sampleRequest(t)
	nonce := nonceExtension(t, 16)
	cases := []struct {
		name string
		der  []byte
	}{
		{"empty", nil},
		{"not DER", []byte("hello")},
		{"trailing bytes", append(append([]byte{}, single...), 0)},
		{"two certificates", buildRequest(t, single, 2)},
		{"no certificates", buildRequest(t, single, 0)},
		{"empty nonce", buildRequest(t, single, 1, nonceExtension(t, 0))},
		{"nonce of 129 octets", buildRequest(t, single, 1, nonceExtension(t, 129))},
		{"two nonces", buildRequest(t, single, 1, nonce, nonce)},
		{"unknown critical extension", buildRequest(t, single, 1,
			pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3}, Critical: true, Value: []byte{5, 0}})},
	}
	for _, c := range cases {
		if _, err := parseRequest(c.der); !errors.Is(err, errMalformed) {
			t.Errorf("%s: got %v, want a malformed request error", c.name, err)
		}
	}
}

func TestDecodeGETPath_RejectsOversized(t *testing.T) {
	path := "/" + strings.Repeat("A", 4*DefaultMaxRequestBytes/3+8)
	if _, err := decodeGETPath(path, DefaultMaxRequestBytes); !errors.Is(err, errMalformed) {
		t.Errorf("oversized GET: got %v, want a malformed request error", err)
	}
}

func TestDecodeGETPath_RejectsEmpty(t *testing.T) {
	for _, path := range []string{"", "/", "///"} {
		if _, err := decodeGETPath(path, DefaultMaxRequestBytes); !errors.Is(err, errMalformed) {
			t.Errorf("GET path %q: got %v, want a malformed request error", path, err)
		}
	}
}

// responseNonce returns the nonce extension value of a successful response.
func responseNonce(t *testing.T, der []byte) []byte {
	t.Helper()
	var outer responseASN1
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		t.Fatalf("parse OCSPResponse: %v", err)
	}
	var basic basicResponse
	if _, err := asn1.Unmarshal(outer.Response.Response, &basic); err != nil {
		t.Fatalf("parse BasicOCSPResponse: %v", err)
	}
	var data responseData
	if _, err := asn1.Unmarshal(basic.TBSResponseData.FullBytes, &data); err != nil {
		t.Fatalf("parse ResponseData: %v", err)
	}
	for _, ext := range data.ResponseExtensions {
		if ext.Id.Equal(oidNonce) {
			return ext.Value
		}
	}
	return nil
}

func TestResponder_EchoesBareNonce(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("bare-nonce.example.net", randomSerial())
	bare := pkix.Extension{Id: oidNonce, Value: []byte("0123456789abcdef")}
	der := buildRequest(t, p.opensslRequest(leaf, "-no_nonce"), 1, bare)
	resp, err := http.Post(p.ocspURL(), "application/ocsp-request", bytes.NewReader(der))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if got := responseNonce(t, body); !bytes.Equal(got, bare.Value) {
		t.Errorf("response nonce %x, want the request's %x", got, bare.Value)
	}
	p.verifyWithOpenSSL(t, body, leaf, "good")
}
