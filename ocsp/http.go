package ocsp

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	xocsp "golang.org/x/crypto/ocsp"
)

// contentTypeResponse is the media type of RFC 6960, appendix C.2.
const contentTypeResponse = "application/ocsp-response"

// contentTypeValues is the Content-Type header value of every response.
var contentTypeValues = []string{contentTypeResponse}

// ServeHTTP handles a GET or POST OCSP request under the Responder's prefix
// (see the package documentation). OCSP errors are sent with HTTP status 200
// and an error OCSPResponse, so that clients can read them. Only responses
// to GET requests without a nonce carry caching headers (RFC 5019, 6.2).
func (r *Responder) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	rest, ok := r.pathRest(hr.URL.Path)
	if !ok {
		http.NotFound(w, hr)
		return
	}
	var der []byte
	var err error
	switch hr.Method {
	case http.MethodGet, http.MethodHead:
		der, err = decodeGETPath(rest, r.opts.MaxRequestBytes)
	case http.MethodPost:
		der, err = readBody(w, hr, r.opts.MaxRequestBytes)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed: use GET or POST", http.StatusMethodNotAllowed)
		return
	}

	var req *request
	if err == nil {
		req, err = parseRequest(der)
	}
	if err != nil {
		r.writeError(w, hr, err)
		return
	}

	resp, err := r.respond(req)
	if err != nil {
		r.writeError(w, hr, err)
		return
	}
	if r.logger.Enabled(hr.Context(), slog.LevelDebug) {
		// The serial's hex form costs an allocation per request, so it is
		// made only when the record is kept.
		r.logger.Debug("ocsp response", "serial", req.SerialNumber.Text(16),
			"status", resp.status.status, "method", hr.Method)
	}
	cacheable := hr.Method != http.MethodPost && req.nonce == nil
	r.writeResponse(w, hr, resp, cacheable)
}

// Wrap returns a handler that sends requests under the Responder's prefix to
// the Responder and all others to next. Use it in front of an
// http.ServeMux, which would redirect GET paths whose base64 contains "//".
func (r *Responder) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		if _, ok := r.pathRest(hr.URL.Path); ok {
			r.ServeHTTP(w, hr)
			return
		}
		next.ServeHTTP(w, hr)
	})
}

// pathRest returns the decoded path after the prefix, and false for paths
// outside it.
func (r *Responder) pathRest(path string) (string, bool) {
	prefix := r.opts.Prefix
	if path == prefix {
		return "", true
	}
	if strings.HasPrefix(path, prefix+"/") {
		return path[len(prefix):], true
	}
	return "", false
}

// readBody reads a POST body of at most max bytes. The content type is not
// checked, because some clients leave it out.
func readBody(w http.ResponseWriter, hr *http.Request, max int) ([]byte, error) {
	der, err := io.ReadAll(http.MaxBytesReader(w, hr.Body, int64(max)))
	if err != nil {
		return nil, errors.Join(errMalformed, err)
	}
	return der, nil
}

// writeError sends the OCSP error response for err.
func (r *Responder) writeError(w http.ResponseWriter, hr *http.Request, err error) {
	var body []byte
	switch {
	case errors.Is(err, errMalformed):
		r.logger.Debug("ocsp request rejected", "remote", hr.RemoteAddr, "error", err)
		body = xocsp.MalformedRequestErrorResponse
	case errors.Is(err, errUnauthorized):
		r.logger.Debug("ocsp request for a foreign issuer", "remote", hr.RemoteAddr)
		body = xocsp.UnauthorizedErrorResponse
	case errors.Is(err, errNotReady):
		r.repeats.Warn(r.logger, "not ready", "ocsp request before the state caught up, sent tryLater")
		body = xocsp.TryLaterErrorResponse
	case errors.Is(err, errKeyUnavailable):
		r.repeats.Warn(r.logger, "tryLater "+caOf(err), "ocsp signing key unavailable, sent tryLater",
			"error", err)
		body = xocsp.TryLaterErrorResponse
	default:
		r.logger.Error("ocsp response failed", "error", err)
		body = xocsp.InternalErrorErrorResponse
	}
	w.Header().Set("Content-Type", contentTypeResponse)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// writeResponse sends a signed response, with the caching headers of RFC
// 5019, 6.2 when cacheable. Header values other than Cache-Control are
// slices that the response formatted once and shares between requests,
// stored under their canonical keys. net/http only reads them.
func (r *Responder) writeResponse(
	w http.ResponseWriter,
	hr *http.Request,
	resp *signedResponse,
	cacheable bool,
) {
	hdr := w.Header()
	hdr["Content-Type"] = contentTypeValues
	if cacheable {
		maxAge := int64(resp.nextUpdate.Sub(r.now()).Seconds())
		if maxAge < 0 {
			maxAge = 0
		}
		hdr["Cache-Control"] = []string{
			"max-age=" + strconv.FormatInt(maxAge, 10) + ", public, no-transform, must-revalidate",
		}
		hdr["Expires"] = resp.headers.expires
		hdr["Last-Modified"] = resp.headers.lastModified
		hdr["Etag"] = resp.headers.etag
		if etagMatches(hr.Header.Get("If-None-Match"), resp.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	hdr["Content-Length"] = resp.headers.contentLength
	w.Write(resp.der)
}

// etagMatches reports whether an If-None-Match header lists etag or "*".
func etagMatches(header, etag string) bool {
	for _, candidate := range strings.Split(header, ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == etag || candidate == "*" {
			return true
		}
	}
	return false
}
