package acme

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"anchor/fsm"
)

// keySource says which JWS key parameter a resource requires (RFC 8555, 6.2).
type keySource int

const (
	// byKID requires "kid", the URL of an existing, valid account.
	byKID keySource = iota
	// byJWK requires "jwk", as newAccount does.
	byJWK
	// byEither accepts either, as revokeCert does.
	byEither
)

// signedRequest is a verified ACME POST.
type signedRequest struct {
	header  jwsHeader
	payload []byte
	// key verified the signature: the account key or the embedded JWK.
	key *jose.JSONWebKey
	// account is the signing account when the JWS used "kid".
	account *fsm.ACMEAccount
}

// postAsGet reports whether the request is a POST-as-GET (empty payload).
func (sr *signedRequest) postAsGet() bool { return len(sr.payload) == 0 }

// decode unmarshals the payload, which must be a JSON object.
func (sr *signedRequest) decode(v any) error {
	if sr.postAsGet() {
		return malformed("this request needs a JSON payload, not POST-as-GET")
	}
	if err := json.Unmarshal(sr.payload, v); err != nil {
		return malformed("invalid JSON payload: %v", err)
	}
	return nil
}

// readSigned reads, parses and verifies an ACME POST. Checks that need no
// state come first; the nonce is redeemed last, so a request rejected for
// any other reason does not use it up.
func (s *Server) readSigned(w http.ResponseWriter, r *http.Request, c *call,
	src keySource) (*signedRequest, error) {
	if err := checkContentType(r); err != nil {
		return nil, err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	p, err := parseJWS(body)
	if err != nil {
		return nil, err
	}
	if p.header.URL != s.requestURL(r) {
		return nil, unauthorized("JWS \"url\" %q does not match the request URL %q",
			p.header.URL, s.requestURL(r))
	}
	nonce, err := s.nonces.check(r.Context(), p.header.Nonce)
	if err != nil {
		return nil, err
	}

	sr := &signedRequest{header: p.header}
	if err := s.resolveKey(p, c, src, sr); err != nil {
		return nil, err
	}
	if sr.payload, err = p.verify(sr.key); err != nil {
		return nil, err
	}
	if sr.account != nil {
		if err := s.limits.allowAccount(sr.account.ID, time.Now()); err != nil {
			return nil, err
		}
		c.account = sr.account
	}
	if err := s.nonces.redeem(r.Context(), p.header.Nonce, nonce); err != nil {
		return nil, err
	}
	return sr, nil
}

func checkContentType(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/jose+json" {
		return newProblem(probMalformed, http.StatusUnsupportedMediaType,
			"Content-Type must be application/jose+json, not %q", r.Header.Get("Content-Type"))
	}
	return nil
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, newProblem(probMalformed, http.StatusRequestEntityTooLarge,
			"request body exceeds %d bytes", s.opts.MaxBodyBytes)
	}
	if err != nil {
		return nil, malformed("read request body: %v", err)
	}
	return body, nil
}

// resolveKey finds the key that must have signed p.
func (s *Server) resolveKey(p *parsedJWS, c *call, src keySource, sr *signedRequest) error {
	hasKID, hasJWK := p.header.KID != "", p.jwk != nil
	switch {
	case hasKID && hasJWK:
		return malformed("JWS must not have both \"kid\" and \"jwk\"")
	case !hasKID && !hasJWK:
		return malformed("JWS needs \"kid\" or \"jwk\"")
	case hasJWK && src == byKID:
		return malformed("this request must be signed with an account key named by \"kid\"")
	case hasKID && src == byJWK:
		return malformed("this request must carry the account key in \"jwk\"")
	case hasJWK:
		sr.key = p.jwk
		return nil
	}
	acct, err := s.accountByKID(c, p.header.KID)
	if err != nil {
		return err
	}
	key, err := parseStoredJWK(acct.JWK)
	if err != nil {
		return err
	}
	sr.account, sr.key = acct, key
	return nil
}

// accountByKID returns the valid account that kid, an account URL, names.
// Only the path is compared, so an account URL from another node of the
// cluster works too.
func (s *Server) accountByKID(c *call, kid string) (*fsm.ACMEAccount, error) {
	u, err := url.Parse(kid)
	if err != nil {
		return nil, malformed("JWS \"kid\" %q is not a URL", kid)
	}
	id, ok := strings.CutPrefix(u.Path, c.rootPath+"/account/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return nil, newProblem(probAccountDoesNotExist, http.StatusBadRequest,
			"JWS \"kid\" %q is not an account URL of this directory", kid)
	}
	acct, err := s.account(id)
	if fsm.IsNotFound(err) || (err == nil && acct.ChainID != c.chainID) {
		return nil, newProblem(probAccountDoesNotExist, http.StatusBadRequest,
			"account %q does not exist", id)
	}
	if err != nil {
		return nil, err
	}
	if acct.Status != fsm.ACMEStatusValid {
		return nil, unauthorized("account %q is %s", id, acct.Status)
	}
	return acct, nil
}

func (s *Server) account(id string) (*fsm.ACMEAccount, error) {
	var acct *fsm.ACMEAccount
	err := s.state.View(func(tx *fsm.Tx) error {
		var err error
		acct, err = tx.ACMEAccount(id)
		return err
	})
	return acct, err
}

func parseStoredJWK(raw []byte) (*jose.JSONWebKey, error) {
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON(raw); err != nil {
		return nil, internalProblem("stored account key does not parse: %v", err)
	}
	return &key, nil
}
