package acme

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"anchor/fsm"
)

// handlerFunc serves one ACME resource. It returns a *problem, an
// *fsm.Error or another error instead of writing an error response.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) error

// call is the context of one request: the chain it addresses and the URLs
// of that chain's ACME resources.
type call struct {
	chainID string
	// root is the absolute URL of the chain's ACME root, without a trailing
	// slash: ".../{org}/{realm}/x509/{chain}/acme".
	root string
	// rootPath is the path of root.
	rootPath string
	// account is the account that signed the request, once verified.
	account *fsm.ACMEAccount
}

func (c *call) url(parts ...string) string { return c.root + "/" + strings.Join(parts, "/") }

// wrap resolves the chain, adds the headers every response carries
// (Replay-Nonce, Link rel="index", Cache-Control) and writes a problem
// document for a returned error.
func (s *Server) wrap(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := s.newCall(r)
		w.Header().Set("Link", link(c.url("directory"), "index"))
		w.Header().Set("Cache-Control", "no-store")
		err := s.addNonce(w, r)
		if err == nil && s.opts.Ready != nil && !s.opts.Ready() {
			err = notReady()
		}
		if err == nil {
			err = s.limits.allowAddress(clientAddress(r), time.Now())
		}
		if err == nil {
			err = s.checkChain(c)
			if err != nil {
				// Without a known chain there is no directory for the index link.
				w.Header().Del("Link")
			}
		}
		if err == nil {
			err = h(w, r, c)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) newCall(r *http.Request) *call {
	org, realm, chain := r.PathValue("org"), r.PathValue("realm"), r.PathValue("chain")
	rootPath := "/" + org + "/" + realm + "/x509/" + chain + "/acme"
	return &call{
		chainID:  fsm.ChainID(org, realm, chain),
		root:     s.origin(r) + rootPath,
		rootPath: rootPath,
	}
}

// origin returns the scheme and host URLs are built from.
func (s *Server) origin(r *http.Request) string {
	if s.opts.ExternalURL != "" {
		return s.opts.ExternalURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// requestURL is the URL a JWS "url" header must name for request r.
func (s *Server) requestURL(r *http.Request) string {
	u := s.origin(r) + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return u
}

func (s *Server) checkChain(c *call) error {
	return s.state.View(func(tx *fsm.Tx) error {
		_, err := tx.Chain(c.chainID)
		if fsm.IsNotFound(err) {
			return notFound("no ACME directory for chain %q", c.chainID)
		}
		return err
	})
}

// addNonce sets a fresh Replay-Nonce. Requests that never need one, the
// directory and renewal information, go on without it when no nonce can be
// issued, for example before the cluster has a leader.
func (s *Server) addNonce(w http.ResponseWriter, r *http.Request) error {
	nonce, err := s.nonces.issue(r.Context())
	if err != nil {
		if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/new-nonce") {
			s.logger.Warn("acme nonce not issued", "path", r.URL.Path, "error", err)
			return nil
		}
		return err
	}
	w.Header().Set("Replay-Nonce", nonce)
	return nil
}

func link(url, rel string) string { return "<" + url + `>;rel="` + rel + `"` }

// clientAddress returns the IP address of the client, without the port.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err)
	if p.Type == probServerInternal {
		s.logger.Error("acme request failed", "method", r.Method, "path", r.URL.Path,
			"error", err)
	}
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	if p.location != "" {
		w.Header().Set("Location", p.location)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// resourceMethods maps the first path segment under a chain's ACME root to
// the methods the resource accepts, for 405 responses.
var resourceMethods = map[string]string{
	"directory": "GET, HEAD", "new-nonce": "GET, HEAD", "renewal-info": "GET, HEAD",
	"new-account": "POST", "account": "POST", "key-change": "POST", "new-order": "POST",
	"order": "POST", "authz": "POST", "chall": "POST", "cert": "POST", "revoke-cert": "POST",
}

func (s *Server) handleUnknown(w http.ResponseWriter, r *http.Request, c *call) error {
	first, _, _ := strings.Cut(r.PathValue("rest"), "/")
	if allow, ok := resourceMethods[first]; ok {
		w.Header().Set("Allow", allow)
		return newProblem(probMalformed, http.StatusMethodNotAllowed,
			"%s is not allowed on %s: use %s", r.Method, r.URL.Path, allow)
	}
	return notFound("no ACME resource at %s", r.URL.Path)
}
