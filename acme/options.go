package acme

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"
)

// Options configures a Server. Zero values select the documented defaults.
type Options struct {
	// ExternalURL, when set, is the scheme and host ("https://ca.example:8443")
	// of every URL the server returns. By default URLs are built from the
	// request's Host header and scheme, so each node's URLs point to itself.
	ExternalURL string

	// HTTP01Port is the port http-01 validation connects to. Default 80.
	HTTP01Port int
	// TLSALPN01Port is the port tls-alpn-01 validation connects to. Default 443.
	TLSALPN01Port int
	// DNSResolver is the "host:port" of the DNS server that validation
	// queries for A, AAAA and TXT records. Default: the system resolver.
	DNSResolver string
	// Resolver, when set, replaces DNSResolver for every lookup.
	Resolver Resolver
	// DialContext, when set, opens the connections of http-01 and
	// tls-alpn-01 validation. The address is always an IP address and port.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)
	// ValidationTimeout bounds one validation attempt of a challenge.
	// Default 30 s.
	ValidationTimeout time.Duration
	// ValidationAttempts is how many attempts a challenge gets before it is
	// invalid (RFC 8555, 8.2). A failed attempt is retried unless its problem
	// is final, such as a malformed request. Default 3, and 1 disables
	// retries.
	ValidationAttempts int
	// ValidationRetryDelay is the wait between two attempts. Default 5 s,
	// the lower end of what RFC 8555, 8.2, suggests.
	ValidationRetryDelay time.Duration

	// Ready, when set, reports whether the replicated state has caught up
	// with the cluster since the node started. Until it has, every request
	// gets a serverInternal problem with status 503 and Retry-After, so that
	// no client reads accounts, orders or certificates the node has not
	// applied yet.
	Ready func() bool

	// NodeID names this node in the challenges it validates. Default: a
	// random ID per Server, which a restarted node does not keep.
	NodeID string
	// IsLeader reports whether this node is the Raft leader. When set, the
	// leader takes over the validations of nodes that stopped before they
	// committed a result. Nil disables the takeover, so such a challenge
	// stays processing until a client posts to it again or it expires.
	IsLeader func() bool
	// TakeoverInterval is how often the leader looks for stalled
	// validations. Default 10 s.
	TakeoverInterval time.Duration
	// TakeoverGrace is how long past the end of its attempt a validating
	// node has to commit the result before the leader takes over. It covers
	// the commit and clock differences between nodes. Default 10 s.
	TakeoverGrace time.Duration

	// OrderLifetime is how long an order and its authorizations stay usable.
	// Default 24 h.
	OrderLifetime time.Duration
	// NonceLifetime is how long an issued nonce is accepted. Default 10 min.
	NonceLifetime time.Duration
	// MaxBodyBytes limits the size of a request body. Default 64 KiB.
	MaxBodyBytes int64

	// RateLimits limits requests per account and per client address.
	RateLimits RateLimits
	// Profiles lists the certificate profiles offered in the directory,
	// name to description. An order may name one; empty offers none.
	Profiles map[string]string
}

// RateLimits configures token buckets kept in memory on each node, so a
// client spreading requests over n nodes gets up to n times the rate.
type RateLimits struct {
	// AccountPerMinute is the sustained rate of signed requests per
	// account; zero disables the limit.
	AccountPerMinute int
	// AccountBurst is the bucket size per account. Default AccountPerMinute.
	AccountBurst int
	// AddressPerMinute is the sustained rate of all requests per client IP
	// address; zero disables the limit.
	AddressPerMinute int
	// AddressBurst is the bucket size per address. Default AddressPerMinute.
	AddressBurst int
}

// Resolver looks up the addresses and TXT records of identifiers under
// validation. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

func (o *Options) withDefaults() (Options, error) {
	out := *o
	if out.ExternalURL != "" {
		u, err := url.Parse(out.ExternalURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return out, fmt.Errorf("acme options: ExternalURL %q must be an http or https "+
				"scheme and host without a path", out.ExternalURL)
		}
		out.ExternalURL = u.Scheme + "://" + u.Host
	}

	setDefault(&out.HTTP01Port, 80)
	setDefault(&out.TLSALPN01Port, 443)
	setDefault(&out.ValidationTimeout, 30*time.Second)
	setDefault(&out.ValidationAttempts, 3)
	setDefault(&out.ValidationRetryDelay, 5*time.Second)
	setDefault(&out.TakeoverInterval, 10*time.Second)
	setDefault(&out.TakeoverGrace, 10*time.Second)
	if out.NodeID == "" {
		out.NodeID = randomNodeID()
	}

	setDefault(&out.OrderLifetime, 24*time.Hour)
	setDefault(&out.NonceLifetime, 10*time.Minute)
	setDefault(&out.MaxBodyBytes, 64<<10)
	setDefault(&out.RateLimits.AccountBurst, out.RateLimits.AccountPerMinute)
	setDefault(&out.RateLimits.AddressBurst, out.RateLimits.AddressPerMinute)
	if out.Resolver == nil {
		out.Resolver = newResolver(out.DNSResolver)
	}
	if out.DialContext == nil {
		out.DialContext = (&net.Dialer{}).DialContext
	}
	return out, nil
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// newResolver returns the system resolver, or a resolver that sends every
// query to server ("host:port").
func newResolver(server string) *net.Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
}

// randomNodeID returns an ID for a Server whose node has none.
func randomNodeID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "acme-" + hex.EncodeToString(b)
}
