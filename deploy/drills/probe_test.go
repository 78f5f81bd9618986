//go:build e2e

package drills

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/go-acme/lego/v5/acme"
	legolog "github.com/go-acme/lego/v5/log"
)

// A node cut off with docker network disconnect is reachable neither from
// the host nor from the other containers. To act as a client inside its
// partition, a drill copies this test binary into the node's container
// and runs it there with ANCHOR_DRILL_PROBE set. TestMain then reads one
// probeJob from standard input, runs it against the node's own loopback
// address and prints a probeResult. The binary runs in the image because
// it is built on the same host as the node binaries, whose glibc
// deploy/docker/build-image.sh checks against the image's.

// probePath is where the drills copy the test binary in a container.
const probePath = "/tmp/anchor-drill-probe"

// Probe job kinds.
const (
	probeOCSP  = "ocsp"  // OCSP status of each certificate
	probeIssue = "issue" // one ACME issuance, a write through the Raft log
)

// probeJob is one task of the probe inside a container.
type probeJob struct {
	Kind string `json:"kind"`
	// HTTPURL is the node's OCSP base URL, for probeOCSP.
	HTTPURL string `json:"http_url,omitempty"`
	// Certs are DER leaf and issuer pairs, for probeOCSP.
	Certs [][2][]byte `json:"certs,omitempty"`
	// ACMEDir, CAFile, AccountKey (PKCS#8 DER), AccountURL and Domain
	// describe the issuance of probeIssue.
	ACMEDir    string `json:"acme_dir,omitempty"`
	CAFile     string `json:"ca_file,omitempty"`
	AccountKey []byte `json:"account_key,omitempty"`
	AccountURL string `json:"account_url,omitempty"`
	Domain     string `json:"domain,omitempty"`
	// TimeoutMS bounds the whole job.
	TimeoutMS int64 `json:"timeout_ms"`
}

// probeResult is what the probe prints.
type probeResult struct {
	// Statuses has one OCSP status or error text per certificate.
	Statuses  []string `json:"statuses,omitempty"`
	ElapsedMS int64    `json:"elapsed_ms"`
	Error     string   `json:"error,omitempty"`
}

// runProbe runs the job on r and writes the result to w. It returns the
// process exit code: 2 when the job cannot be read.
func runProbe(r io.Reader, w io.Writer) int {
	legolog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var job probeJob
	if err := json.NewDecoder(r).Decode(&job); err != nil {
		fmt.Fprintf(os.Stderr, "probe: read job: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(),
		time.Duration(job.TimeoutMS)*time.Millisecond)
	defer cancel()
	start := time.Now()
	var res probeResult
	var err error
	switch job.Kind {
	case probeOCSP:
		res.Statuses, err = probeOCSPStatuses(ctx, job)
	case probeIssue:
		err = probeIssuance(ctx, job)
	default:
		err = fmt.Errorf("unknown probe kind %q", job.Kind)
	}
	res.ElapsedMS = time.Since(start).Milliseconds()
	if err != nil {
		res.Error = err.Error()
	}
	if err := json.NewEncoder(w).Encode(res); err != nil {
		return 1
	}
	return 0
}

func probeOCSPStatuses(ctx context.Context, job probeJob) ([]string, error) {
	var out []string
	for _, pair := range job.Certs {
		leaf, err := x509.ParseCertificate(pair[0])
		if err != nil {
			return nil, err
		}
		issuer, err := x509.ParseCertificate(pair[1])
		if err != nil {
			return nil, err
		}
		status, err := ocspStatus(ctx, job.HTTPURL, leaf, issuer)
		if err != nil {
			status = "error: " + err.Error()
		}
		out = append(out, status)
	}
	return out, nil
}

func probeIssuance(ctx context.Context, job probeJob) error {
	key, err := x509.ParsePKCS8PrivateKey(job.AccountKey)
	if err != nil {
		return fmt.Errorf("parse account key: %w", err)
	}
	ecKey, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return fmt.Errorf("account key is %T, want ECDSA", key)
	}
	caPEM, err := os.ReadFile(job.CAFile)
	if err != nil {
		return err
	}
	cas := x509.NewCertPool()
	if !cas.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%s contains no PEM certificate", job.CAFile)
	}
	acct := &acmeAccount{key: ecKey, reg: &acme.ExtendedAccount{Location: job.AccountURL}}
	c := &drillCluster{acmeCAs: cas, nodes: []node{{id: "local", acmeDir: job.ACMEDir}}}
	_, err = c.obtain(ctx, acct, 0, job.Domain)
	return err
}

// installProbe copies this test binary into node i's container.
func (c *drillCluster) installProbe(ctx context.Context, i int) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	id, err := c.project.containerID(ctx, c.nodes[i].id)
	if err != nil {
		return "", err
	}
	if _, err := docker(ctx, "cp", exe, id+":"+probePath); err != nil {
		return "", err
	}
	return id, nil
}

// probe runs job in the container and returns its result.
func probe(ctx context.Context, containerID string, job probeJob) (*probeResult, error) {
	in, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "docker", "exec", "-i", "-e", probeEnv+"=1",
		containerID, probePath)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("probe %s in %s: %w: %s", job.Kind, containerID, err, stderr.String())
	}
	var res probeResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("probe %s output %q: %w", job.Kind, out, err)
	}
	return &res, nil
}

// keyDER returns the account's private key in PKCS#8, for a probe job.
func (a *acmeAccount) keyDER() ([]byte, error) {
	return x509.MarshalPKCS8PrivateKey(a.key)
}
