package acme

import (
	"net/http"

	"anchor/fsm"
)

// maxListedOrders bounds the orders list of an account.
const maxListedOrders = 1000

type accountUpdateRequest struct {
	Status  string   `json:"status"`
	Contact []string `json:"contact"`
}

// handleAccount returns, updates or deactivates the signing account (RFC
// 8555, 7.3.2 and 7.3.6).
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request, c *call) error {
	sr, err := s.readSigned(w, r, c, byKID)
	if err != nil {
		return err
	}
	if sr.account.ID != r.PathValue("id") {
		return unauthorized("the request is signed by another account")
	}
	if sr.postAsGet() {
		return s.writeAccount(w, http.StatusOK, c, sr.account)
	}
	var req accountUpdateRequest
	if err := sr.decode(&req); err != nil {
		return err
	}
	if req.Status != "" && req.Status != fsm.ACMEStatusDeactivated {
		return malformed("an account's status can only be set to %q", fsm.ACMEStatusDeactivated)
	}
	if req.Contact != nil {
		if err := checkContacts(req.Contact); err != nil {
			return err
		}
	}
	if req.Status == "" && req.Contact == nil {
		return s.writeAccount(w, http.StatusOK, c, sr.account)
	}
	return s.updateAccount(w, r, c, &fsm.UpdateACMEAccount{
		ID: sr.account.ID, Contact: req.Contact, Deactivate: req.Status != "",
	})
}

func (s *Server) updateAccount(w http.ResponseWriter, r *http.Request, c *call,
	p *fsm.UpdateACMEAccount) error {
	var updated fsm.ACMEAccount
	if err := s.proposeAs(r.Context(), accountActor(p.ID), fsm.CmdACMEUpdateAccount, p, &updated); err != nil {
		return err
	}
	if err := s.awaitLocal(r.Context(), func(tx *fsm.Tx) bool {
		a, err := tx.ACMEAccount(p.ID)
		return err == nil && a.Status == updated.Status
	}); err != nil {
		return err
	}
	if p.Deactivate {
		s.logger.Info("acme account deactivated", "account", p.ID)
	}
	w.Header().Set("Location", c.url("account", updated.ID))
	writeJSON(w, http.StatusOK, c.accountJSON(&updated))
	return nil
}

// handleAccountOrders lists the URLs of the signing account's orders (RFC
// 8555, 7.1.2.1).
//
// NOTE: the list is cut at maxListedOrders; Link rel="next" paging is not
// implemented.
func (s *Server) handleAccountOrders(w http.ResponseWriter, r *http.Request, c *call) error {
	sr, err := s.readSigned(w, r, c, byKID)
	if err != nil {
		return err
	}
	if sr.account.ID != r.PathValue("id") {
		return unauthorized("the request is signed by another account")
	}
	var ids []string
	if err := s.state.View(func(tx *fsm.Tx) error {
		ids = tx.ACMEOrderIDs(sr.account.ID)
		return nil
	}); err != nil {
		return err
	}
	urls := []string{}
	for i, id := range ids {
		if i == maxListedOrders {
			break
		}
		urls = append(urls, c.url("order", id))
	}
	writeJSON(w, http.StatusOK, map[string][]string{"orders": urls})
	return nil
}
