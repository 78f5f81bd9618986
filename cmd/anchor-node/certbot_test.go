package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"anchor/internal/freeport"
	"anchor/internal/localcluster"
)

// freeLoopbackPort returns a TCP port that was free on 127.0.0.1, outside
// the range of outgoing connections' ports.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ports, err := freeport.Take("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

// TestCertbot_HTTP01WithEAB issues a certificate for localhost with certbot
// (the Debian package) against node 2 of a three-process cluster: an EAB
// account, http-01 from certbot's standalone server, and the nodes'
// validation connecting to that server's port.
func TestCertbot_HTTP01WithEAB(t *testing.T) {
	certbot, err := exec.LookPath("certbot")
	if err != nil {
		t.Skip("certbot is not installed (scripts/install-deps.sh installs it)")
	}
	port := freeLoopbackPort(t)
	_, info := startClusterWith(t, localcluster.Options{Nodes: 3, HTTP01Port: port})
	dir := t.TempDir()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, certbot, "certonly", "--non-interactive",
		"--standalone", "--http-01-port", strconv.Itoa(port), "-d", "localhost",
		"--server", info.Nodes[1].ACMEDirectory,
		// With "=", because a base64url key may start with "-", which certbot would
		// take for an option.
		"--eab-kid="+info.EAB.KeyID, "--eab-hmac-key="+info.EAB.HMACKey,
		"--agree-tos", "--register-unsafely-without-email",
		"--config-dir", filepath.Join(dir, "config"), "--work-dir", filepath.Join(dir, "work"),
		"--logs-dir", filepath.Join(dir, "logs"))
	cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+info.ACMECACert)
	if out, err := cmd.CombinedOutput(); err != nil {
		logs, _ := os.ReadFile(filepath.Join(dir, "logs", "letsencrypt.log"))
		t.Fatalf("certbot: %v\n%s\n%s", err, out, tail(logs, 4000))
	}

	live := filepath.Join(dir, "config", "live", "localhost")
	leafPath, chainPath := filepath.Join(live, "cert.pem"), filepath.Join(live, "chain.pem")
	out, err := exec.Command("openssl", "verify", "-CAfile", info.RootCertPath,
		"-untrusted", chainPath, leafPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	// Followers apply the issuance at their next heartbeat, so every node
	// must return good within two seconds.
	waitOCSPStatus(t, info, chainPath, leafPath, "good")
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
