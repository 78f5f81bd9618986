package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"

	"anchor/cluster"
)

// nodeConnectTimeout bounds the TCP connection and TLS handshake with one
// node of a list before the next node is tried.
const nodeConnectTimeout = 3 * time.Second

// connectFirst returns a ready connection to the first of addrs that
// accepts a TCP connection and completes the TLS handshake. No request is
// sent before a connection is ready, so moving on to the next node never
// sends a call twice. source names where addrs come from, such as the
// connection file, in the error returned when every node fails.
func connectFirst(ctx context.Context, source string, addrs []string,
	creds *cluster.Credentials) (*grpc.ClientConn, error) {
	failures := make([]string, 0, len(addrs))
	for _, addr := range addrs {
		conn, err := connectReady(ctx, addr, creds)
		if err == nil {
			return conn, nil
		}
		failures = append(failures, fmt.Sprintf("  %s: %v", addr, err))
	}
	return nil, unreachableError{fmt.Errorf("no node of %s accepts "+
		"connections:\n%s\nstart a node, or set --addr to the gRPC address of a running one",
		source, strings.Join(failures, "\n"))}
}

// connectReady connects to addr and waits until the connection is ready,
// for at most nodeConnectTimeout.
func connectReady(ctx context.Context, addr string,
	creds *cluster.Credentials) (*grpc.ClientConn, error) {
	rec := &connectRecorder{}
	tlsCreds := recordingCredentials{
		TransportCredentials: credentials.NewTLS(creds.ClientConfig()), rec: rec,
	}
	// The passthrough resolver hands addr to rec.dial unresolved, so that a
	// failed DNS lookup is recorded like a refused connection.
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithContextDialer(rec.dial), grpc.WithTransportCredentials(tlsCreds))
	if err != nil {
		return nil, usagef("invalid node address %q: %v", addr, err)
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, nodeConnectTimeout)
	defer cancel()
	conn.Connect()
	for {
		state := conn.GetState()
		if state == connectivity.Ready {
			return conn, nil
		}
		if state == connectivity.TransientFailure || state == connectivity.Shutdown {
			// With TLS 1.3 a node that rejects the admin certificate does
			// so after the client's side of the handshake has completed.
			err := rec.failure("connection failed after the TLS handshake: the node may have " +
				"rejected the admin certificate")
			conn.Close()
			return nil, err
		}
		if !conn.WaitForStateChange(ctx, state) {
			err := rec.failure(timeoutReason(ctx, time.Since(start)))
			conn.Close()
			return nil, err
		}
	}
}

// timeoutReason describes why waiting for a connection ended without one
// after waited.
func timeoutReason(ctx context.Context, waited time.Duration) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("no connection within %s", waited.Round(100*time.Millisecond))
	}
	return fmt.Sprintf("connecting stopped: %v", ctx.Err())
}

// connectRecorder keeps the last dial or TLS handshake error of one
// connection, which gRPC does not expose, so that a skipped node is
// reported with the reason.
type connectRecorder struct {
	mu   sync.Mutex
	last error
}

func (r *connectRecorder) record(err error) {
	r.mu.Lock()
	r.last = err
	r.mu.Unlock()
}

// failure returns the recorded error, or fallback when none was recorded.
func (r *connectRecorder) failure(fallback string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last != nil {
		return r.last
	}
	return errors.New(fallback)
}

// dial opens the TCP connection. NOTE: a dialer of its own means that
// gRPC's HTTPS_PROXY support does not apply to a list of nodes, from the
// connection file or a comma-separated --addr or ANCHOR_ADDR. A single
// --addr or ANCHOR_ADDR keeps it.
func (r *connectRecorder) dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		r.record(err)
	}
	return conn, err
}

// recordingCredentials are TLS transport credentials that record a failed
// client handshake in rec.
type recordingCredentials struct {
	credentials.TransportCredentials
	rec *connectRecorder
}

// ClientHandshake performs the TLS handshake and records its error.
func (c recordingCredentials) ClientHandshake(ctx context.Context, authority string,
	raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		c.rec.record(fmt.Errorf("TLS handshake: %w", err))
	}
	return conn, info, err
}

// Clone returns a copy that records into the same recorder.
func (c recordingCredentials) Clone() credentials.TransportCredentials {
	return recordingCredentials{TransportCredentials: c.TransportCredentials.Clone(), rec: c.rec}
}
