package ocspload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Method is the HTTP method of the requests: GET carries the request in the
// path, POST in the body (RFC 6960, appendix A.1).
type Method string

// The two methods.
const (
	GET  Method = "GET"
	POST Method = "POST"
)

// Options configure one load run.
type Options struct {
	// Addr is the responder's host:port, on loopback.
	Addr string
	// Prefix is the URL path of the responder: POST sends to it, and GET
	// appends a slash and the base64 request (see GETPath).
	Prefix string
	Method Method
	// Requests are sent in turn, each connection starting at its own
	// offset. With a nonce they are copied and given a fresh nonce each.
	Requests []*Request
	// Conns is the number of connections, each with one request in flight.
	Conns int
	// Warmup runs before the measured window and is not counted.
	Warmup   time.Duration
	Duration time.Duration
	// CheckEvery parses every CheckEvery-th response of a connection in
	// full (status good, serial and nonce echoed); the others are checked
	// for a successful responseStatus only. Default 64.
	CheckEvery int
}

// Result is the measurement of one run.
type Result struct {
	Ops       int
	Errors    int
	Reconnect int
	Window    time.Duration
	Latencies []time.Duration
	// FirstError is the first failure seen, for the log.
	FirstError error
}

// drainTimeout bounds how long a connection waits, after the run's end, for
// the response to its last request. Closing a connection with a request in
// flight would make the server write to a closed socket, and `openssl
// ocsp -multi` children die of SIGPIPE then, after which OpenSSL 3.0
// restarts them only 30 s later.
const drainTimeout = 3 * time.Second

// Run sends requests until Warmup+Duration has passed or ctx ends. Each
// connection then waits for its last response.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if len(opts.Requests) == 0 || opts.Conns <= 0 {
		return nil, errors.New("ocspload: no requests or no connections")
	}
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = 64
	}
	start := time.Now()
	measureFrom := start.Add(opts.Warmup)
	end := measureFrom.Add(opts.Duration)
	ctx, cancel := context.WithDeadline(ctx, end.Add(drainTimeout))
	defer cancel()

	rendered := make([][]byte, len(opts.Requests))
	for i, req := range opts.Requests {
		if req.NonceOffset < 0 {
			rendered[i] = render(nil, &opts, req.DER)
		}
	}
	results := make([]*connStats, opts.Conns)
	var wg sync.WaitGroup
	for i := range opts.Conns {
		results[i] = &connStats{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &sender{opts: &opts, rendered: rendered, stats: results[i],
				measureFrom: measureFrom, end: end,
				next: i * len(opts.Requests) / opts.Conns, rng: rand.NewChaCha8(seed(i))}
			s.loop(ctx)
		}()
	}
	wg.Wait()
	return merge(results, end.Sub(measureFrom)), nil
}

func seed(i int) [32]byte {
	var s [32]byte
	s[0], s[1] = byte(i), byte(i>>8)
	s[2] = byte(time.Now().UnixNano())
	return s
}

// connStats is the measurement of one connection.
type connStats struct {
	ops, errors, reconnects int
	latencies               []time.Duration
	firstError              error
}

func merge(all []*connStats, window time.Duration) *Result {
	r := &Result{Window: window}
	for _, s := range all {
		r.Ops += s.ops
		r.Errors += s.errors
		r.Reconnect += s.reconnects
		r.Latencies = append(r.Latencies, s.latencies...)
		if r.FirstError == nil {
			r.FirstError = s.firstError
		}
	}
	return r
}

// sender drives one connection.
type sender struct {
	opts        *Options
	rendered    [][]byte // the HTTP request of each request without a nonce
	stats       *connStats
	measureFrom time.Time
	end         time.Time // no request starts after it
	next        int
	rng         *rand.ChaCha8
	sent        int

	conn net.Conn
	br   *bufio.Reader
	buf  []byte // the DER of a request with a nonce
	out  []byte // the HTTP request with a nonce
}

func (s *sender) loop(ctx context.Context) {
	defer s.close()
	for ctx.Err() == nil && time.Now().Before(s.end) {
		i := s.next % len(s.opts.Requests)
		s.next++
		t0 := time.Now()
		keep, err := s.exchange(ctx, i)
		elapsed := time.Since(t0)
		counted := t0.After(s.measureFrom)
		switch {
		case err != nil && counted:
			s.stats.errors++
			if s.stats.firstError == nil {
				s.stats.firstError = err
			}
		case err == nil && counted:
			s.stats.ops++
			s.stats.latencies = append(s.stats.latencies, elapsed)
		}
		if err != nil || !keep {
			s.close()
		}
	}
}

// exchange sends one request and reads its response. keep reports whether
// the server keeps the connection open.
func (s *sender) exchange(ctx context.Context, i int) (keep bool, err error) {
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return false, err
		}
	}

	req := s.opts.Requests[i]
	out := s.rendered[i]
	var nonce []byte
	if req.NonceOffset >= 0 {
		s.buf = append(s.buf[:0], req.DER...)
		nonce = s.buf[req.NonceOffset : req.NonceOffset+NonceSize]
		_, _ = s.rng.Read(nonce)
		s.out = render(s.out[:0], s.opts, s.buf)
		out = s.out
	}
	_ = s.conn.SetDeadline(s.end.Add(drainTimeout))
	if _, err := s.conn.Write(out); err != nil {
		return false, fmt.Errorf("send request: %w", err)
	}

	status, body, keep, err := readResponse(s.br)
	if err != nil {
		return false, fmt.Errorf("read response: %w", err)
	}
	if status != 200 {
		return keep, fmt.Errorf("HTTP status %d", status)
	}
	s.sent++
	if s.sent%s.opts.CheckEvery == 1 {
		return keep, checkFull(body, req.Serial, nonce)
	}
	return keep, checkStatus(body)
}

func (s *sender) dial(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", s.opts.Addr, err)
	}
	if s.br != nil {
		s.stats.reconnects++
	}
	s.conn = conn
	s.br = bufio.NewReaderSize(conn, 8192)
	return nil
}

func (s *sender) close() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// render appends the HTTP/1.1 request that carries der to dst.
func render(dst []byte, opts *Options, der []byte) []byte {
	if opts.Method == GET {
		return fmt.Appendf(dst, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n",
			GETPath(opts.Prefix, der), opts.Addr)
	}
	dst = fmt.Appendf(dst, "POST %s HTTP/1.1\r\nHost: %s\r\n"+
		"Content-Type: application/ocsp-request\r\nContent-Length: %d\r\n\r\n",
		opts.Prefix, opts.Addr, len(der))
	return append(dst, der...)
}
