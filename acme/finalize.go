package acme

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"anchor/ca"
	"anchor/fsm"
)

// issueTimeout bounds signing and committing one certificate. Issuance runs
// detached from the request, so a client that disconnects does not leave
// the order half finalized.
const issueTimeout = time.Minute

type finalizeRequest struct {
	CSR string `json:"csr"`
}

// handleFinalize issues the certificate of a ready order (RFC 8555, 7.4).
//
// A CSR that the CA's policy rejects gets its problem while the order stays
// ready, so the client can finalize again with another CSR. Otherwise the
// order moves ready -> processing through the log before the CA is called,
// and the CA's commit moves it processing -> valid, so concurrent or
// repeated finalize requests yield one certificate.
func (s *Server) handleFinalize(w http.ResponseWriter, r *http.Request, c *call) error {
	sr, err := s.readSigned(w, r, c, byKID)
	if err != nil {
		return err
	}
	var req finalizeRequest
	if err := sr.decode(&req); err != nil {
		return err
	}
	o, err := s.ownOrder(sr.account, r.PathValue("id"))
	if err != nil {
		return err
	}
	if status := orderStatus(o, time.Now()); status != fsm.ACMEStatusReady {
		return newProblem(probOrderNotReady, http.StatusForbidden,
			"order %q is %s, not ready", o.ID, status)
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		return err
	}
	if err := checkCSRIdentifiers(csr, o.Identifiers); err != nil {
		return err
	}
	caReq := s.issueRequest(o, csr)
	if err := s.issuer.Check(caReq); fsm.CodeOf(err) == fsm.CodeInvalidArgument {
		return issueProblem(err, o.Identifiers)
	}

	err = s.propose(r.Context(), fsm.CmdACMEProcessOrder, fsm.ACMEOrderTransition{ID: o.ID}, nil)
	if fsm.CodeOf(err) == fsm.CodeFailedPrecondition {
		return newProblem(probOrderNotReady, http.StatusForbidden, "%s", err.Error())
	}
	if err != nil {
		return err
	}
	if err := s.issue(r.Context(), o, caReq); err != nil {
		return err
	}
	return s.writeFinalized(w, r, c, o.ID)
}

func parseCSR(encoded string) (*x509.CertificateRequest, error) {
	der, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil || len(der) == 0 {
		return nil, newProblem(probBadCSR, http.StatusBadRequest,
			"\"csr\" must be a base64url DER certificate request")
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, newProblem(probBadCSR, http.StatusBadRequest, "CSR does not parse: %v", err)
	}
	// The CA's Check verifies the signature, and finalize maps its
	// rejection to badCSR.
	return csr, nil
}

// checkCSRIdentifiers requires the CSR's names to be exactly the order's
// identifiers, and its common name, if any, to be one of them.
func checkCSRIdentifiers(csr *x509.CertificateRequest, ids []fsm.ACMEIdentifier) error {
	want := make([]string, 0, len(ids))
	for _, id := range ids {
		want = append(want, id.Type+":"+id.Value)
	}
	var got []string
	for _, name := range csr.DNSNames {
		got = append(got, fsm.ACMEIdentifierDNS+":"+strings.ToLower(name))
	}
	for _, ip := range csr.IPAddresses {
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			return newProblem(probBadCSR, http.StatusBadRequest, "CSR has an invalid IP address")
		}
		got = append(got, fsm.ACMEIdentifierIP+":"+addr.Unmap().String())
	}

	slices.Sort(want)
	slices.Sort(got)
	got = slices.Compact(got)
	if !slices.Equal(want, got) {
		return newProblem(probBadCSR, http.StatusBadRequest,
			"CSR names %v are not the order's identifiers %v", got, want)
	}
	if len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return newProblem(probBadCSR, http.StatusBadRequest, "CSR has email or URI names")
	}

	if cn := strings.ToLower(csr.Subject.CommonName); cn != "" &&
		!slices.Contains(got, fsm.ACMEIdentifierDNS+":"+cn) &&
		!slices.Contains(got, fsm.ACMEIdentifierIP+":"+cn) {
		return newProblem(probBadCSR, http.StatusBadRequest,
			"CSR common name %q is not one of its names", csr.Subject.CommonName)
	}
	return nil
}

// issueRequest returns the CA request of an order's CSR. An account bound by
// a service's EAB key is issued by the SubCA that the key names.
func (s *Server) issueRequest(o *fsm.ACMEOrder, csr *x509.CertificateRequest) *ca.Request {
	req := &ca.Request{ChainID: o.ChainID, CSR: csr, OrderID: o.ID, Actor: accountActor(o.AccountID)}
	_ = s.state.View(func(tx *fsm.Tx) error {
		acct, err := tx.ACMEAccount(o.AccountID)
		if err != nil {
			return err
		}
		key, err := tx.EABKey(acct.EABKeyID)
		if err != nil {
			return err
		}
		req.SubCAID, req.ServiceID = key.SubCAID, key.ServiceID
		return nil
	})
	return req
}

// issue requests the certificate of a processing order from the CA. When the CA
// rejects the request (the state changed since Check), the order becomes
// invalid with the problem the client gets. When the CA fails otherwise (no
// leader, HSM not ready, timeout), the order goes back to ready so the client
// can finalize again.
func (s *Server) issue(reqCtx context.Context, o *fsm.ACMEOrder, req *ca.Request) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), issueTimeout)
	defer cancel()
	issued, err := s.issuer.Issue(ctx, req)
	if err == nil {
		s.logger.Info("acme order finalized", "order", o.ID, "account", o.AccountID,
			"serial", issued.Credential.Serial)
		return nil
	}
	s.logger.Warn("acme order not issued", "order", o.ID, "account", o.AccountID, "error", err)
	p := issueProblem(err, o.Identifiers)
	transition := fsm.ACMEOrderTransition{ID: o.ID}
	typ := fsm.CmdACMERetryOrder
	if p.Status < http.StatusInternalServerError {
		typ = fsm.CmdACMEFailOrder
		transition.Error = &fsm.ACMEProblem{Type: p.Type, Detail: p.Detail}
	} else if p.retryAfter == 0 {
		p.retryAfter = 1
	}
	if err := s.propose(ctx, typ, transition, nil); err != nil {
		// The order may have become valid after all (the CA's commit went
		// through while its reply was lost); the client sees the order as is.
		s.logger.Warn("acme order left processing unchanged", "order", o.ID,
			"command", typ, "error", err)
	}
	return p
}

// issueProblem maps a CA error: a rejected CSR is badCSR, or
// rejectedIdentifier when the message names one of the order's identifiers.
func issueProblem(err error, ids []fsm.ACMEIdentifier) *problem {
	var fe *fsm.Error
	if !errors.As(err, &fe) || fe.Code != fsm.CodeInvalidArgument {
		return problemFor(err)
	}
	for _, id := range ids {
		if strings.Contains(fe.Message, id.Value) {
			return newProblem(probRejectedIdentifier, http.StatusBadRequest, "%s", fe.Message)
		}
	}
	return newProblem(probBadCSR, http.StatusBadRequest, "%s", fe.Message)
}

func (s *Server) writeFinalized(w http.ResponseWriter, r *http.Request, c *call,
	id string) error {
	var o *fsm.ACMEOrder
	if err := s.awaitLocal(r.Context(), func(tx *fsm.Tx) bool {
		var err error
		o, err = tx.ACMEOrder(id)
		return err == nil && o.Status != fsm.ACMEStatusReady &&
			o.Status != fsm.ACMEStatusProcessing
	}); err != nil {
		return err
	}
	w.Header().Set("Location", c.url("order", id))
	writeJSON(w, http.StatusOK, c.orderJSON(o, time.Now()))
	return nil
}
