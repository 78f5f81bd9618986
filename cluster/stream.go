package cluster

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tlsStreamLayer carries Raft traffic over mutual TLS. Accept completes the
// handshake itself so that a peer without valid credentials is rejected and
// logged with its address before Raft reads a byte.
type tlsStreamLayer struct {
	ln        net.Listener
	advertise net.Addr
	server    *tls.Config
	client    *tls.Config
	logger    *slog.Logger
}

func newTLSStreamLayer(bind string, creds *Credentials, logger *slog.Logger) (*tlsStreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("listen on raft_addr %s: %w", bind, err)
	}
	return &tlsStreamLayer{
		ln: ln, advertise: ln.Addr(),
		server: creds.ServerConfig(RequireNode), client: creds.ClientConfig(), logger: logger,
	}, nil
}

// Accept returns the next connection whose TLS handshake succeeded.
func (s *tlsStreamLayer) Accept() (net.Conn, error) {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return nil, err
		}
		tc := tls.Server(conn, s.server)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			s.logger.Warn("raft connection rejected", "peer", conn.RemoteAddr().String(), "error", err)
			conn.Close()
			continue
		}
		_ = tc.SetDeadline(time.Time{})
		return tc, nil
	}
}

func (s *tlsStreamLayer) Close() error   { return s.ln.Close() }
func (s *tlsStreamLayer) Addr() net.Addr { return s.advertise }

// Dial opens a mutual TLS connection to another node's Raft transport.
func (s *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	dialer := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(dialer, "tcp", string(address), s.client)
}
