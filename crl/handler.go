package crl

import (
	"bytes"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"anchor/fsm"
)

// handler serves the replicated CRLs.
type handler struct {
	st     *fsm.FSM
	logger *slog.Logger
	ready  func() bool
}

// NewHandler returns the HTTP handler of the CRLs in st. Mount it at
// "/crl/": it serves GET and HEAD of the paths that URL, ShardURL,
// ShardURLs and DeltaURLs make with the DER bytes of the scope's latest
// complete or delta CRL, and 404 for a scope without one yet.
// http.ServeContent handles conditional and range requests.
//
// ready, when not nil, reports whether st has caught up with the cluster since
// the node started. Until it has, every request gets 503 with Retry-After, so that
// a restarted node does not serve a CRL older than one the cluster published.
func NewHandler(st *fsm.FSM, logger *slog.Logger, ready func() bool) http.Handler {
	return &handler{st: st, logger: logger, ready: ready}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
		return
	}
	scope, delta, ok := parsePath(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if h.ready != nil && !h.ready() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "this node's state has not caught up with the cluster since it started: "+
			"retry later or fetch the CRL from another node", http.StatusServiceUnavailable)
		return
	}
	var crl *fsm.CRL
	err := h.st.View(func(tx *fsm.Tx) error {
		var err error
		crl, err = tx.CRL(scope, delta)
		return err
	})
	if fsm.IsNotFound(err) {
		http.Error(w, "no CRL published for this scope", http.StatusNotFound)
		return
	}
	if err != nil {
		h.logger.Error("crl read failed", "scope", scope.String(), "delta", delta, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	setHeaders(w.Header(), crl, time.Now())
	http.ServeContent(w, r, "", crl.ThisUpdate, bytes.NewReader(crl.DER))
}

// setHeaders lets HTTP caches keep the CRL until its nextUpdate. The cRLNumber
// identifies the content, because a number is stored once per scope.
func setHeaders(hdr http.Header, crl *fsm.CRL, now time.Time) {
	maxAge := int64(crl.NextUpdate.Sub(now) / time.Second)
	if maxAge < 0 {
		maxAge = 0
	}
	hdr.Set("Content-Type", "application/pkix-crl")
	hdr.Set("Cache-Control", "public, max-age="+strconv.FormatInt(maxAge, 10))
	hdr.Set("Expires", crl.NextUpdate.UTC().Format(http.TimeFormat))
	hdr.Set("ETag", `"`+strconv.FormatUint(crl.Number, 10)+`"`)
}
