package acme

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"

	"anchor/fsm"
)

// validator performs challenge validations: it resolves identifiers with the
// configured resolver and connects with the configured dialer.
type validator struct {
	resolver    Resolver
	dial        func(ctx context.Context, network, address string) (net.Conn, error)
	http01Port  int
	tlsALPNPort int
}

func newValidator(o *Options) *validator {
	return &validator{
		resolver: o.Resolver, dial: o.DialContext,
		http01Port: o.HTTP01Port, tlsALPNPort: o.TLSALPN01Port,
	}
}

// validate checks one challenge and returns nil when it passed, or the
// problem to record.
func (v *validator) validate(ctx context.Context, typ string, id fsm.ACMEIdentifier,
	token, keyAuth string) *problem {
	switch typ {
	case challengeHTTP01:
		return v.http01(ctx, id, token, keyAuth)
	case challengeDNS01:
		return v.dns01(ctx, id, keyAuth)
	case challengeTLSALPN01:
		return v.tlsALPN01(ctx, id, keyAuth)
	}
	return internalProblem("challenge type %q has no validator", typ)
}

// dialHost connects to host:port, resolving a DNS name with the resolver and
// trying each address in turn. Resolution failures are dns problems.
func (v *validator) dialHost(ctx context.Context, network, host string, port int) (
	net.Conn, error) {
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = v.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(addrs) == 0 {
			return nil, newProblem(probDNS, http.StatusBadRequest,
				"no address found for %q: %v", host, err)
		}
	}
	var errs []error
	for _, a := range addrs {
		conn, err := v.dial(ctx, network, netip.AddrPortFrom(a.Unmap(), uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, newProblem(probConnection, http.StatusBadRequest,
		"cannot connect to %s port %d: %v", host, port, errors.Join(errs...))
}

// asProblem turns a validation error into its problem, defaulting to a
// connection problem.
func asProblem(err error, format string, args ...any) *problem {
	var p *problem
	if errors.As(err, &p) {
		return p
	}
	return newProblem(probConnection, http.StatusBadRequest, format, args...)
}

func hostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
