package acme

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/go-jose/go-jose/v4"
)

// supportedAlgorithms lists the JWS algorithms accepted for account and
// certificate keys, in the order they are advertised.
var supportedAlgorithms = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.RS256, jose.EdDSA,
}

// RSA key sizes accepted for account keys, in bits.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// jwsHeader holds the protected header parameters ACME uses (RFC 8555, 6.2).
type jwsHeader struct {
	Alg   string          `json:"alg"`
	Nonce string          `json:"nonce"`
	URL   string          `json:"url"`
	KID   string          `json:"kid"`
	JWK   json.RawMessage `json:"jwk"`
}

// flattenedJWS is the JWS Flattened JSON Serialization (RFC 7515, 7.2.2),
// with the members of the general serialization so they can be rejected.
type flattenedJWS struct {
	Protected  string          `json:"protected"`
	Payload    *string         `json:"payload"`
	Signature  string          `json:"signature"`
	Header     json.RawMessage `json:"header"`
	Signatures json.RawMessage `json:"signatures"`
}

// parsedJWS is a structurally valid ACME JWS whose signature is not verified
// yet.
type parsedJWS struct {
	sig    *jose.JSONWebSignature
	header jwsHeader
	// jwk is the key embedded in the protected header, or nil.
	jwk *jose.JSONWebKey
}

// parseJWS checks the structure of an ACME request body: the flattened JSON
// serialization, one signature, a protected header only, and a supported
// asymmetric algorithm.
func parseJWS(body []byte) (*parsedJWS, error) {
	var flat flattenedJWS
	if err := json.Unmarshal(body, &flat); err != nil {
		return nil, malformed("request body is not a JWS in flattened JSON serialization: %v", err)
	}
	if flat.Signatures != nil {
		return nil, malformed("JWS must use the flattened JSON serialization, not \"signatures\"")
	}
	if flat.Header != nil {
		return nil, malformed("JWS must not have an unprotected header")
	}
	if flat.Protected == "" || flat.Payload == nil || flat.Signature == "" {
		return nil, malformed("JWS needs \"protected\", \"payload\" and \"signature\"")
	}

	header, err := decodeProtected(flat.Protected)
	if err != nil {
		return nil, err
	}
	if !algorithmSupported(header.Alg) {
		return nil, badSignatureAlgorithm(header.Alg)
	}
	sig, err := jose.ParseSignedJSON(string(body), supportedAlgorithms)
	if err != nil {
		return nil, malformed("invalid JWS: %v", err)
	}
	if len(sig.Signatures) != 1 {
		return nil, malformed("JWS must have exactly one signature")
	}
	p := &parsedJWS{sig: sig, header: *header}
	if len(header.JWK) > 0 {
		p.jwk = sig.Signatures[0].Protected.JSONWebKey
		if p.jwk == nil {
			return nil, malformed("invalid \"jwk\" in the JWS protected header")
		}
	}
	return p, nil
}

func decodeProtected(protected string) (*jwsHeader, error) {
	raw, err := base64.RawURLEncoding.DecodeString(protected)
	if err != nil {
		return nil, malformed("JWS protected header is not base64url: %v", err)
	}
	var h jwsHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, malformed("JWS protected header is not a JSON object: %v", err)
	}
	return &h, nil
}

func algorithmSupported(alg string) bool {
	for _, a := range supportedAlgorithms {
		if string(a) == alg {
			return true
		}
	}
	return false
}

func badSignatureAlgorithm(alg string) *problem {
	p := newProblem(probBadSignatureAlgorithm, http.StatusBadRequest,
		"JWS algorithm %q is not supported", alg)
	for _, a := range supportedAlgorithms {
		p.Algorithms = append(p.Algorithms, string(a))
	}
	return p
}

// verify checks the signature with key and returns the payload. The key's
// type and size must suit the header's algorithm.
func (p *parsedJWS) verify(key *jose.JSONWebKey) ([]byte, error) {
	if err := checkAccountKey(key, p.header.Alg); err != nil {
		return nil, err
	}
	payload, err := p.sig.Verify(key)
	if err != nil {
		return nil, malformed("JWS signature does not verify")
	}
	return payload, nil
}

// checkAccountKey rejects keys the server does not accept and keys that do
// not match alg.
func checkAccountKey(key *jose.JSONWebKey, alg string) error {
	if key == nil || !key.Valid() || !key.IsPublic() {
		return newProblem(probBadPublicKey, http.StatusBadRequest, "invalid public key")
	}
	switch k := key.Key.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		if bits < minRSABits || bits > maxRSABits {
			return newProblem(probBadPublicKey, http.StatusBadRequest,
				"RSA key of %d bits is outside %d to %d", bits, minRSABits, maxRSABits)
		}
		return requireAlg(alg, jose.RS256)
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return requireAlg(alg, jose.ES256)
		case elliptic.P384():
			return requireAlg(alg, jose.ES384)
		}
		return newProblem(probBadPublicKey, http.StatusBadRequest,
			"ECDSA curve %s is not supported: use P-256 or P-384", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return requireAlg(alg, jose.EdDSA)
	default:
		return newProblem(probBadPublicKey, http.StatusBadRequest,
			"key type %T is not supported", key.Key)
	}
}

func requireAlg(alg string, want jose.SignatureAlgorithm) error {
	if alg != string(want) {
		return malformed("JWS algorithm %q does not match the key, which needs %q", alg, want)
	}
	return nil
}
