package acme

import (
	"errors"
	"fmt"
	"net/http"

	"anchor/cluster"
	"anchor/fsm"
)

// ACME error types: RFC 8555, 6.7, plus alreadyReplaced from RFC 9773 and
// invalidProfile from the ACME profiles extension, an Internet-Draft.
const (
	errNS                      = "urn:ietf:params:acme:error:"
	probAccountDoesNotExist    = errNS + "accountDoesNotExist"
	probAlreadyReplaced        = errNS + "alreadyReplaced"
	probAlreadyRevoked         = errNS + "alreadyRevoked"
	probBadCSR                 = errNS + "badCSR"
	probBadNonce               = errNS + "badNonce"
	probBadPublicKey           = errNS + "badPublicKey"
	probBadRevocationReason    = errNS + "badRevocationReason"
	probBadSignatureAlgorithm  = errNS + "badSignatureAlgorithm"
	probConnection             = errNS + "connection"
	probDNS                    = errNS + "dns"
	probExternalAccountRequire = errNS + "externalAccountRequired"
	probIncorrectResponse      = errNS + "incorrectResponse"
	probInvalidContact         = errNS + "invalidContact"
	probInvalidProfile         = errNS + "invalidProfile"
	probMalformed              = errNS + "malformed"
	probOrderNotReady          = errNS + "orderNotReady"
	probRateLimited            = errNS + "rateLimited"
	probRejectedIdentifier     = errNS + "rejectedIdentifier"
	probServerInternal         = errNS + "serverInternal"
	probTLS                    = errNS + "tls"
	probUnauthorized           = errNS + "unauthorized"
	probUnsupportedContact     = errNS + "unsupportedContact"
	probUnsupportedIdentifier  = errNS + "unsupportedIdentifier"
)

// problem is an RFC 7807 problem document. It is also the error type of the
// request handlers: only the HTTP edge turns errors into problems.
type problem struct {
	Type       string   `json:"type"`
	Detail     string   `json:"detail,omitempty"`
	Status     int      `json:"status,omitempty"`
	Algorithms []string `json:"algorithms,omitempty"`
	// retryAfter, when positive, is sent as a Retry-After header in seconds.
	retryAfter int
	// location, when set, is sent as a Location header (409 Conflict on
	// an existing key).
	location string
}

func (p *problem) Error() string { return p.Type + ": " + p.Detail }

func newProblem(typ string, status int, format string, args ...any) *problem {
	return &problem{Type: typ, Status: status, Detail: fmt.Sprintf(format, args...)}
}

func malformed(format string, args ...any) *problem {
	return newProblem(probMalformed, http.StatusBadRequest, format, args...)
}

func unauthorized(format string, args ...any) *problem {
	return newProblem(probUnauthorized, http.StatusForbidden, format, args...)
}

func notFound(format string, args ...any) *problem {
	return newProblem(probMalformed, http.StatusNotFound, format, args...)
}

func badNonce(format string, args ...any) *problem {
	return newProblem(probBadNonce, http.StatusBadRequest, format, args...)
}

func internalProblem(format string, args ...any) *problem {
	return newProblem(probServerInternal, http.StatusInternalServerError, format, args...)
}

// notReady returns the problem for a request to a node that has not caught up with
// the cluster since it started (Options.Ready).
func notReady() *problem {
	p := newProblem(probServerInternal, http.StatusServiceUnavailable,
		"this node has not caught up with the cluster since it started: retry, or use another node")
	p.retryAfter = 1
	return p
}

// problemFor converts an error into a problem document. Errors of the fsm
// package keep their message; other errors are internal and their text is
// not sent to the client.
func problemFor(err error) *problem {
	var p *problem
	if errors.As(err, &p) {
		return p
	}
	if errors.Is(err, cluster.ErrNoLeader) {
		// The cluster cannot commit now, so the client may retry here later
		// or move to another node. The detail leaves out the addresses and
		// errors of NoLeaderError, which writeError logs.
		p := newProblem(probServerInternal, http.StatusServiceUnavailable,
			"no cluster leader: this node reaches no majority of the cluster's voters and "+
				"cannot commit; retry later or use another node")
		p.retryAfter = 5
		return p
	}
	var fe *fsm.Error
	if !errors.As(err, &fe) {
		return internalProblem("internal error")
	}
	switch fe.Code {
	case fsm.CodeNotFound:
		return notFound("%s", fe.Message)
	case fsm.CodeAlreadyExists:
		return newProblem(probMalformed, http.StatusConflict, "%s", fe.Message)
	case fsm.CodeInvalidArgument:
		return malformed("%s", fe.Message)
	case fsm.CodeFailedPrecondition:
		return unauthorized("%s", fe.Message)
	case fsm.CodeUnavailable:
		p := newProblem(probServerInternal, http.StatusServiceUnavailable,
			"%s", fe.Message)
		p.retryAfter = 1
		return p
	default:
		return internalProblem("internal error")
	}
}
