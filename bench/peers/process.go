package peers

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"anchor/internal/freeport"
)

// Process is a running peer program whose output goes to a log file.
type Process struct {
	Name string
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs bin with args in its own process group, with env added to the
// environment and output appended to logPath.
func Start(name, logPath string, env []string, bin string, args ...string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Stop sends SIGTERM to the process group and SIGKILL after five seconds.
// The group matters for `openssl ocsp -multi`, whose children serve the
// requests.
func (p *Process) Stop() {
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.done
	}
	_ = syscall.Kill(pgid, syscall.SIGKILL) // children that outlived the parent
}

// WaitListening waits until addr accepts TCP connections or the process
// exits, up to timeout.
func (p *Process) WaitListening(ctx context.Context, addr string, timeout time.Duration) error {
	return p.wait(ctx, addr, timeout, func(context.Context, net.Conn) error { return nil })
}

// WaitAnswering waits until addr responds to a plain HTTP request for "/" or
// the process exits. The responders probed with it must see a request on every
// connection: an `openssl ocsp` worker process (OpenSSL 3.0) that accepts a
// connection closed before its request reads end-of-file from it in a loop
// for good, taking a CPU away from whatever is measured next.
func (p *Process) WaitAnswering(ctx context.Context, addr string, timeout time.Duration) error {
	return p.wait(ctx, addr, timeout, func(ctx context.Context, conn net.Conn) error {
		if deadline, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(deadline)
		}
		req := "GET / HTTP/1.0\r\nHost: " + addr + "\r\nConnection: close\r\n\r\n"
		if _, err := conn.Write([]byte(req)); err != nil {
			return fmt.Errorf("send request: %w", err)
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return fmt.Errorf("read status line: %w", err)
		}
		if !strings.HasPrefix(line, "HTTP/") {
			return fmt.Errorf("response %q is not HTTP", line)
		}
		// Read to the end, so that the server closes first.
		_, _ = io.Copy(io.Discard, conn)
		return nil
	})
}

// wait dials addr until probe succeeds on a connection, the process exits,
// ctx ends or the timeout passes. A dial and its probe share a deadline of
// at most five seconds that ends no later than the timeout.
func (p *Process) wait(ctx context.Context, addr string, timeout time.Duration,
	probe func(context.Context, net.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for {
		lastErr = p.attempt(ctx, addr, probe)
		if lastErr == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited while waiting for it on %s (last attempt: %v); see %s",
				p.Name, addr, lastErr, p.Log)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready on %s after %s: %w; see %s",
				p.Name, addr, timeout, lastErr, p.Log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// attempt dials addr once and runs probe on the connection.
func (p *Process) attempt(ctx context.Context, addr string,
	probe func(context.Context, net.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	return probe(ctx, conn)
}

// FreePort returns a TCP port on 127.0.0.1 that was free when checked.
func FreePort() (int, error) {
	ports, err := freeport.Take("127.0.0.1", 1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// LoopbackAddr returns "127.0.0.1:port".
func LoopbackAddr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
