package ocsp

import (
	"encoding/base64"
	"errors"
	"testing"
)

// FuzzParseRequest feeds a string through the GET path decoder and the
// request parser, and also parses its bytes as a POST body. Every failure
// must be a malformed request, and every accepted request must be one that
// the responder can respond to.
func FuzzParseRequest(f *testing.F) {
	single := sampleRequest(f)
	withNonce := buildRequest(f, single, 1, nonceExtension(f, 32))
	for _, der := range [][]byte{single, withNonce, buildRequest(f, single, 2)} {
		b64 := base64.StdEncoding.EncodeToString(der)
		f.Add("/" + b64)
		f.Add("//" + percentEncoder.Replace(b64))
		f.Add(base64.RawURLEncoding.EncodeToString(der))
		f.Add(string(der))
	}
	f.Add("")
	f.Add("/%")
	f.Fuzz(func(t *testing.T, input string) {
		if der, err := decodeGETPath(input, DefaultMaxRequestBytes); err == nil {
			checkParsed(t, der)
		} else if !errors.Is(err, errMalformed) {
			t.Fatalf("decodeGETPath(%q): error %v is not a malformed request", input, err)
		}
		checkParsed(t, []byte(input))
	})
}

func checkParsed(t *testing.T, der []byte) {
	req, err := parseRequest(der)
	if err != nil {
		if !errors.Is(err, errMalformed) {
			t.Fatalf("parseRequest(%x): error %v is not a malformed request", der, err)
		}
		return
	}
	if req.SerialNumber == nil {
		t.Fatalf("parseRequest(%x): accepted without a serial", der)
	}
	if _, ok := hashAlgorithmOIDs[req.HashAlgorithm]; !ok {
		t.Fatalf("parseRequest(%x): accepted hash %v that responses cannot name", der, req.HashAlgorithm)
	}
	if req.nonce != nil {
		if n := nonceLen(req.nonce.Value); n < minNonceLen || n > maxNonceLen {
			t.Fatalf("parseRequest(%x): accepted a nonce of %d octets", der, n)
		}
	}
}
