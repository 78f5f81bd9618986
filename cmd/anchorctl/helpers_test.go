package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"anchor/ca"
	"anchor/cluster"
	"anchor/crl"
	"anchor/fsm"
	"anchor/internal/freeport"
	"anchor/internal/testenv"
)

// cli runs anchorctl in-process against one node with one admin
// certificate.
type cli struct {
	t    *testing.T
	addr string
	tls  cluster.TLSConfig
}

// on returns the cli for the (sub)test t, whose failures it reports.
func (c *cli) on(t *testing.T) *cli {
	return &cli{t: t, addr: c.addr, tls: c.tls}
}

// result is the outcome of one run.
type result struct {
	code   int
	stdout string
	stderr string
}

// run executes anchorctl with the connection flags and args.
func (c *cli) run(args ...string) result {
	c.t.Helper()
	return c.runInput("", args...)
}

// runInput is run with stdin.
func (c *cli) runInput(stdin string, args ...string) result {
	c.t.Helper()
	flags := []string{"--addr", c.addr, "--tls-cert", c.tls.CertFile, "--tls-key", c.tls.KeyFile,
		"--tls-ca", c.tls.CAFile, "--connection", "/nonexistent/cluster.json", "--timeout", "30s"}
	return runRaw(stdin, nil, append(flags, args...)...)
}

// runRaw executes anchorctl with exactly args and the environment env.
func runRaw(stdin string, env map[string]string, args ...string) result {
	var out, errOut bytes.Buffer
	s := streams{in: strings.NewReader(stdin), out: &out, err: &errOut}
	code := run(context.Background(), args, s, func(k string) string { return env[k] })
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// ok fails the test unless the run exited 0, and returns its stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != exitOK {
		c.t.Fatalf("anchorctl %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// exit fails the test unless the run exited with code, and returns stderr.
func (c *cli) exit(code int, args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != code {
		c.t.Fatalf("anchorctl %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, r.code, code,
			r.stdout, r.stderr)
	}
	return r.stderr
}

// json runs args with --output json and decodes stdout into v.
func (c *cli) json(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append([]string{"--output", "json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("anchorctl %v: output is not JSON: %v\n%s", args, err, out)
	}
}

func wantContains(t *testing.T, text string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(text, p) {
			t.Errorf("output lacks %q:\n%s", p, text)
		}
	}
}

// issue signs a leaf for names on member i under the default SubCA of
// chainID.
func issue(t *testing.T,
	env *testenv.Env, i int, chainID string, names ...string) *fsm.Credential {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	issued, err := env.Members[i].Issuer.Issue(c, &ca.Request{ChainID: chainID, CSR: csr})
	if err != nil {
		t.Fatalf("issue %v: %v", names, err)
	}
	return issued.Credential
}

// runPublishers runs a CRL publisher on every member; the leader's signs.
func runPublishers(t *testing.T, env *testenv.Env) {
	c, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, m := range env.Members {
		pub := crl.NewPublisher(m.State(), m.Cluster, m.HSM, slog.New(slog.DiscardHandler),
			crl.PublisherOptions{IsLeader: m.Cluster.IsLeader, Debounce: 50 * time.Millisecond,
				Interval: time.Second})
		wg.Add(1)
		go func() { defer wg.Done(); _ = pub.Run(c) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// parsePEM returns the certificates of PEM data.
func parsePEM(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cert)
	}
}
