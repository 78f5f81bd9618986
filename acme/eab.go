package acme

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"net/http"

	"github.com/go-jose/go-jose/v4"

	"anchor/fsm"
)

// verifyEAB checks a newAccount request's externalAccountBinding (RFC 8555,
// 7.3.4): a JWS MAC'ed with the EAB key's HMAC key over the account's JWK,
// whose "kid" is the EAB key ID and whose "url" is the newAccount URL. It
// returns the EAB key, which must belong to the chain and be unbound.
func (s *Server) verifyEAB(c *call, raw json.RawMessage, accountKey *jose.JSONWebKey) (
	*fsm.EABKey, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, newProblem(probExternalAccountRequire, http.StatusForbidden,
			"this server requires an externalAccountBinding in newAccount")
	}
	var flat flattenedJWS
	if err := json.Unmarshal(raw, &flat); err != nil {
		return nil, malformed("externalAccountBinding is not a flattened JWS: %v", err)
	}
	if flat.Signatures != nil || flat.Header != nil || flat.Payload == nil ||
		flat.Protected == "" || flat.Signature == "" {
		return nil, malformed("externalAccountBinding must be a flattened JWS with a " +
			"protected header only")
	}
	header, err := decodeProtected(flat.Protected)
	if err != nil {
		return nil, err
	}
	newHash := macHash(header.Alg)
	if newHash == nil {
		return nil, malformed("externalAccountBinding algorithm %q is not HS256, HS384 or HS512",
			header.Alg)
	}
	if header.Nonce != "" {
		return nil, malformed("externalAccountBinding must not carry a nonce")
	}
	if header.URL != c.url("new-account") {
		return nil, unauthorized("externalAccountBinding \"url\" %q is not the newAccount URL",
			header.URL)
	}

	key, err := s.eabKey(c, header.KID)
	if err != nil {
		return nil, err
	}
	if err := checkEABSignature(&flat, key.HMACKey, newHash); err != nil {
		return nil, err
	}
	return key, checkEABPayload(*flat.Payload, accountKey)
}

func macHash(alg string) func() hash.Hash {
	switch alg {
	case "HS256":
		return sha256.New
	case "HS384":
		return sha512.New384
	case "HS512":
		return sha512.New
	}
	return nil
}

func (s *Server) eabKey(c *call, keyID string) (*fsm.EABKey, error) {
	if keyID == "" {
		return nil, malformed("externalAccountBinding has no \"kid\"")
	}
	var key *fsm.EABKey
	err := s.state.View(func(tx *fsm.Tx) error {
		var err error
		key, err = tx.EABKey(keyID)
		return err
	})
	if fsm.IsNotFound(err) || (err == nil && key.ChainID != c.chainID) {
		return nil, unauthorized("EAB key %q is not a key of this directory", keyID)
	}
	if err != nil {
		return nil, err
	}
	if key.AccountID != "" {
		return nil, unauthorized("EAB key %q is already bound to an account: use that account's "+
			"key, or create another EAB key with anchorctl eab create", keyID)
	}
	return key, nil
}

func checkEABSignature(flat *flattenedJWS, key []byte, newHash func() hash.Hash) error {
	sig, err := base64.RawURLEncoding.DecodeString(flat.Signature)
	if err != nil {
		return malformed("externalAccountBinding signature is not base64url")
	}
	mac := hmac.New(newHash, key)
	mac.Write([]byte(flat.Protected + "." + *flat.Payload))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return unauthorized("externalAccountBinding MAC does not verify with the EAB key")
	}
	return nil
}

// checkEABPayload requires the binding's payload to be the account key.
func checkEABPayload(payload string, accountKey *jose.JSONWebKey) error {
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return malformed("externalAccountBinding payload is not base64url")
	}
	var bound jose.JSONWebKey
	if err := bound.UnmarshalJSON(raw); err != nil {
		return malformed("externalAccountBinding payload is not a JWK: %v", err)
	}
	got, err1 := bound.Thumbprint(crypto.SHA256)
	want, err2 := accountKey.Thumbprint(crypto.SHA256)
	if err1 != nil || err2 != nil || !hmac.Equal(got, want) {
		return unauthorized("externalAccountBinding payload is not the account key")
	}
	return nil
}
