package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// faultNet cuts connections between chosen members, for partition tests.
// Production nodes never set Config.faultNet; it sits in the dial and accept
// paths of the Raft transport and of gRPC forwarding.
type faultNet struct {
	mu      sync.Mutex
	addrs   map[string]string // raft or gRPC address to member ID
	blocked map[[2]string]bool
	conns   map[[2]string][]net.Conn
}

var errPartitioned = errors.New("network partition (test)")

func newFaultNet() *faultNet {
	return &faultNet{addrs: map[string]string{}, blocked: map[[2]string]bool{}, conns: map[[2]string][]net.Conn{}}
}

func (f *faultNet) register(id string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range addrs {
		f.addrs[a] = id
	}
}

// partition cuts every link between the two groups and closes open
// connections across the cut.
func (f *faultNet) partition(a, b []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range a {
		for _, y := range b {
			for _, key := range [][2]string{{x, y}, {y, x}} {
				f.blocked[key] = true
				for _, c := range f.conns[key] {
					c.Close()
				}
				delete(f.conns, key)
			}
		}
	}
}

// heal restores every link.
func (f *faultNet) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.blocked)
}

// track records conn from one member to another, or rejects it when the link
// is cut.
func (f *faultNet) track(from, to string, conn net.Conn) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := [2]string{from, to}
	if f.blocked[key] {
		conn.Close()
		return nil, errPartitioned
	}
	f.conns[key] = append(f.conns[key], conn)
	return conn, nil
}

func (f *faultNet) idOf(addr string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addrs[addr]
}

// dialer returns a gRPC context dialer for member self.
func (f *faultNet) dialer(self string) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		if f.blockedLink(self, f.idOf(addr)) {
			return nil, errPartitioned
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return f.track(self, f.idOf(addr), conn)
	}
}

func (f *faultNet) blockedLink(from, to string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.blocked[[2]string{from, to}]
}

// faultStream wraps a Raft stream layer of member self.
type faultStream struct {
	raft.StreamLayer
	net  *faultNet
	self string
}

func (s *faultStream) Accept() (net.Conn, error) {
	for {
		conn, err := s.StreamLayer.Accept()
		if err != nil {
			return nil, err
		}
		from := ""
		if tc, ok := conn.(*tls.Conn); ok && len(tc.ConnectionState().PeerCertificates) > 0 {
			from = tc.ConnectionState().PeerCertificates[0].Subject.CommonName
		}
		if tracked, err := s.net.track(from, s.self, conn); err == nil {
			return tracked, nil
		}
	}
}

func (s *faultStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	to := s.net.idOf(string(address))
	if s.net.blockedLink(s.self, to) {
		return nil, errPartitioned
	}
	conn, err := s.StreamLayer.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	return s.net.track(s.self, to, conn)
}
