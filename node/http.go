package node

import (
	"context"
	"crypto"
	"net/http"
	"strings"

	"anchor/acme"
	"anchor/ca"
	"anchor/crl"
	"anchor/fsm"
	"anchor/ocsp"
)

// httpHandler routes the node's plain HTTP endpoints:
//
//	/ocsp, /ocsp/{request}               OCSP (RFC 6960)
//	/crl/{org}/{realm}/{chain}/{ca}.crl  CRLs (RFC 5280)
//	/ca/{org}/{realm}/{chain}/{ca}.der   CA certificates (caIssuers)
//	/healthz                             liveness
//	/readyz                              readiness: 503 until the state has caught up
func (n *Node) httpHandler() http.Handler {
	st := n.cluster.State()
	mux := http.NewServeMux()

	responder := ocsp.NewResponder(st, n.heldKeys(), n.logger, ocsp.Options{Ready: n.cluster.CaughtUp})
	n.responder = responder
	mux.Handle("/ocsp", responder)
	mux.Handle("/ocsp/", responder)
	mux.Handle("/crl/", crl.NewHandler(st, n.logger, n.cluster.CaughtUp))
	mux.HandleFunc("GET /ca/", n.serveCACert)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", n.serveReady)
	// The responder sees GET requests before the mux, which would redirect
	// the "//" that base64 in a path can contain.
	return responder.Wrap(mux)
}

// acmeHandler serves ACME (RFC 8555) at /{org}/{realm}/x509/{chain}/acme/.
func (n *Node) acmeHandler() (http.Handler, error) {
	srv, err := acme.NewServer(n.cluster.State(), n.cluster, n.issuer, n.logger, acme.Options{
		HTTP01Port:    n.cfg.ACME.HTTP01Port,
		TLSALPN01Port: n.cfg.ACME.TLSALPN01Port,
		DNSResolver:   n.cfg.ACME.DNSResolver,
		NodeID:        n.cfg.NodeID,
		IsLeader:      n.cluster.IsLeader,
		Ready:         n.cluster.CaughtUp,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	srv.Register(mux)
	n.acme = srv
	return mux, nil
}

// serveReady reports whether this node serves current OCSP responses and CRLs. It
// returns 200 once the state has caught up with the cluster's commit index after
// start. Before that, OCSP returns tryLater, CRLs 503, and serveReady 503 with
// Retry-After.
func (n *Node) serveReady(w http.ResponseWriter, _ *http.Request) {
	if !n.cluster.CaughtUp() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "catching up: this node has not applied the cluster's commit index "+
			"since it started", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ready\n"))
}

// serveCACert answers caIssuers requests with the CA certificate in DER.
func (n *Node) serveCACert(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/ca/"), ".der")
	if !ok {
		http.NotFound(w, r)
		return
	}
	var der []byte
	err := n.cluster.State().View(func(tx *fsm.Tx) error {
		c, err := tx.CA(id)
		if err == nil {
			der = c.CertDER
		}
		return err
	})
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-cert")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(der)
}

// heldSigners gives OCSP and CRL signing only the keys that this node has
// proved to hold, as the issuer does.
type heldSigners struct {
	state  *fsm.FSM
	keys   ca.KeyStore
	nodeID string
}

func (h heldSigners) Signer(keyID string) (crypto.Signer, error) {
	return ca.HeldSigner(h.state, h.keys, h.nodeID, keyID)
}

func (n *Node) heldKeys() heldSigners {
	return heldSigners{state: n.cluster.State(), keys: n.hsm, nodeID: n.cfg.NodeID}
}

// runBackground starts OCSP pre-signing on every node and the loops that act
// only on the leader: CRL publication and OCSP responder certificates.
func (n *Node) runBackground(ctx context.Context) {
	st := n.cluster.State()
	pub := crl.NewPublisher(st, n.cluster, n.heldKeys(), n.logger, crl.PublisherOptions{
		IsLeader: n.cluster.IsLeader,
	})
	// The designator's commands enter the audit trail: it creates, and
	// retires, keys in every node's HSM.
	designatorApplier := ca.ActorApplier{Applier: n.cluster, Actor: "ocsp-designator:" + n.cfg.NodeID}
	designator := ocsp.NewDesignator(st, designatorApplier, n.hsm, n.logger, ocsp.DesignatorOptions{
		IsLeader: n.cluster.IsLeader, NodeID: n.cfg.NodeID,
	})
	n.goRun("crl publisher", func() error { return pub.Run(ctx) })
	n.goRun("ocsp responder designator", func() error { return designator.Run(ctx) })
	n.goRun("ocsp pre-signing", func() error { return n.responder.Run(ctx) })
}
