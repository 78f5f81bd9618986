package acme

import "net/http"

// handleDirectory serves the chain's directory (RFC 8555, 7.1.1).
func (s *Server) handleDirectory(w http.ResponseWriter, r *http.Request, c *call) error {
	writeJSON(w, http.StatusOK, directoryJSON{
		NewNonce:    c.url("new-nonce"),
		NewAccount:  c.url("new-account"),
		NewOrder:    c.url("new-order"),
		RevokeCert:  c.url("revoke-cert"),
		KeyChange:   c.url("key-change"),
		RenewalInfo: c.url("renewal-info"),
		Meta: directoryMeta{
			ExternalAccountRequired: true,
			Profiles:                s.opts.Profiles,
		},
	})
	return nil
}

// handleNewNonce returns 200 to HEAD and 204 to GET (RFC 8555, 7.2). The
// wrapper already set Replay-Nonce.
func (s *Server) handleNewNonce(w http.ResponseWriter, r *http.Request, c *call) error {
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
