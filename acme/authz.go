package acme

import (
	"net/http"
	"time"

	"anchor/fsm"
)

type authzUpdateRequest struct {
	Status string `json:"status"`
}

// handleAuthz returns an authorization (POST-as-GET) or deactivates it
// (RFC 8555, 7.5 and 7.5.2).
func (s *Server) handleAuthz(w http.ResponseWriter, r *http.Request, c *call) error {
	sr, err := s.readSigned(w, r, c, byKID)
	if err != nil {
		return err
	}
	a, err := s.ownAuthz(sr.account, r.PathValue("id"))
	if err != nil {
		return err
	}
	if sr.postAsGet() {
		writeJSON(w, http.StatusOK, c.authzJSON(a, time.Now()))
		return nil
	}

	var req authzUpdateRequest
	if err := sr.decode(&req); err != nil {
		return err
	}
	if req.Status != fsm.ACMEStatusDeactivated {
		return malformed("an authorization's status can only be set to %q",
			fsm.ACMEStatusDeactivated)
	}

	var updated fsm.ACMEAuthorization
	err = s.propose(r.Context(), fsm.CmdACMEDeactivateAuthz,
		fsm.DeactivateACMEAuthz{ID: a.ID}, &updated)
	if fsm.CodeOf(err) == fsm.CodeFailedPrecondition {
		return malformed("%s", err.Error())
	}
	if err != nil {
		return err
	}
	if err := s.awaitLocal(r.Context(), func(tx *fsm.Tx) bool {
		got, err := tx.ACMEAuthorization(a.ID)
		return err == nil && got.Status == fsm.ACMEStatusDeactivated
	}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c.authzJSON(&updated, time.Now()))
	return nil
}

// ownAuthz returns an authorization of acct.
func (s *Server) ownAuthz(acct *fsm.ACMEAccount, id string) (*fsm.ACMEAuthorization, error) {
	var a *fsm.ACMEAuthorization
	err := s.state.View(func(tx *fsm.Tx) error {
		var err error
		a, err = tx.ACMEAuthorization(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if a.AccountID != acct.ID {
		return nil, unauthorized("authorization %q belongs to another account", id)
	}
	return a, nil
}
