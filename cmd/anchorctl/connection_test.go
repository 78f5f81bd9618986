package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"anchor/cluster"
)

// writeConnectionFile writes a connection file in a new directory that
// names tlsCfg and one node for each of addrs, in order, and returns its
// path.
func writeConnectionFile(t *testing.T, tlsCfg cluster.TLSConfig, addrs ...string) string {
	t.Helper()
	type node struct {
		ID        string `json:"id"`
		AdminAddr string `json:"admin_addr"`
	}
	info := struct {
		AdminTLS cluster.TLSConfig `json:"admin_tls"`
		Nodes    []node            `json:"nodes"`
	}{AdminTLS: tlsCfg}
	for i, addr := range addrs {
		info.Nodes = append(info.Nodes, node{ID: fmt.Sprintf("node%d", i+1), AdminAddr: addr})
	}
	data, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cluster.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// silentListener returns the address of a loopback listener that never
// accepts: the kernel completes TCP connections to it, and no TLS
// handshake follows, as with a node process that is stopped.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// foreignTLSServer returns the address of a loopback HTTPS server whose
// certificate is not from the cluster-internal CA.
func foreignTLSServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// answeringNode returns the node_id that cluster status reports when
// anchorctl takes its target from the connection file connFile.
func answeringNode(t *testing.T, connFile string) string {
	t.Helper()
	r := runRaw("", nil, "--connection", connFile, "--output", "json", "cluster", "status")
	if r.code != exitOK {
		t.Fatalf("cluster status: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var st struct {
		NodeID string `json:"node_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("cluster status output is not JSON: %v\n%s", err, r.stdout)
	}
	return st.NodeID
}

// testConnectionFileFailover checks that commands reach the first node of
// a connection file that accepts the connection. root is connected to a
// live node.
func testConnectionFileFailover(t *testing.T, root *cli) {
	var want struct {
		NodeID string `json:"node_id"`
	}
	root.json(&want, "cluster", "status")

	t.Run("FirstNodeRefuses", func(t *testing.T) {
		file := writeConnectionFile(t, root.tls, closedAddr(t), root.addr)
		if got := answeringNode(t, file); got != want.NodeID {
			t.Errorf("answered by %q, want %q", got, want.NodeID)
		}
		// A write succeeds once: a second delivery would fail with
		// "already exists".
		r := runRaw("", nil, "--connection", file, "org", "create", "failover")
		if r.code != exitOK {
			t.Fatalf("org create: exit %d\nstderr: %s", r.code, r.stderr)
		}
		wantContains(t, root.ok("org", "list"), "failover")
	})

	t.Run("FirstNodeSilent", func(t *testing.T) {
		file := writeConnectionFile(t, root.tls, silentListener(t), root.addr)
		if got := answeringNode(t, file); got != want.NodeID {
			t.Errorf("answered by %q, want %q", got, want.NodeID)
		}
	})

	t.Run("FirstNodeForeignTLS", func(t *testing.T) {
		file := writeConnectionFile(t, root.tls, foreignTLSServer(t), root.addr)
		if got := answeringNode(t, file); got != want.NodeID {
			t.Errorf("answered by %q, want %q", got, want.NodeID)
		}
	})

	t.Run("NoNodeAccepts", func(t *testing.T) {
		refused, foreign, silent := closedAddr(t), foreignTLSServer(t), silentListener(t)
		file := writeConnectionFile(t, root.tls, refused, foreign, silent)
		r := runRaw("", nil, "--connection", file, "org", "list")
		if r.code != exitUnreachable {
			t.Fatalf("exit %d, want %d\nstderr: %s", r.code, exitUnreachable, r.stderr)
		}
		wantContains(t, r.stderr, file, refused+": dial tcp", "connection refused",
			foreign+": TLS handshake", silent+": no connection within", "--addr")
		if r.stdout != "" {
			t.Errorf("stdout: %q, want nothing", r.stdout)
		}
	})

	t.Run("AddrListTriedInOrder", func(t *testing.T) {
		env := map[string]string{
			"ANCHOR_ADDR":     closedAddr(t) + ", " + root.addr,
			"ANCHOR_TLS_CERT": root.tls.CertFile, "ANCHOR_TLS_KEY": root.tls.KeyFile,
			"ANCHOR_TLS_CA": root.tls.CAFile,
		}
		none := filepath.Join(t.TempDir(), "none.json")
		r := runRaw("", env, "--connection", none, "--output", "json", "cluster", "status")
		if r.code != exitOK {
			t.Fatalf("exit %d with a refusing first address\nstderr: %s", r.code, r.stderr)
		}
		wantContains(t, r.stdout, want.NodeID)

		env["ANCHOR_ADDR"] = closedAddr(t) + "," + closedAddr(t)
		r = runRaw("", env, "--connection", none, "org", "list")
		if r.code != exitUnreachable {
			t.Fatalf("exit %d, want %d\nstderr: %s", r.code, exitUnreachable, r.stderr)
		}
		wantContains(t, r.stderr, "no node of --addr or ANCHOR_ADDR accepts connections")
	})

	t.Run("AddrFlagIsNotReplaced", func(t *testing.T) {
		file := writeConnectionFile(t, root.tls, root.addr)
		r := runRaw("", nil, "--connection", file, "--addr", closedAddr(t), "org", "list")
		if r.code != exitUnreachable {
			t.Errorf("exit %d, want %d: --addr must not fall back to the connection file\n%s",
				r.code, exitUnreachable, r.stderr)
		}
	})
}

func TestConnectionFile_Missing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.json")
	r := runRaw("", nil, "--connection", missing, "org", "list")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	wantContains(t, r.stderr, "connection file "+missing+" does not exist", "--addr")
}

func TestConnectionFile_RelativePathShownAbsolute(t *testing.T) {
	r := runRaw("", nil, "--connection", "no-such-dir/cluster.json", "org", "list")
	abs, err := filepath.Abs("no-such-dir/cluster.json")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, r.stderr, "no-such-dir/cluster.json ("+abs+") does not exist")
}

func TestConnectionFile_Unreadable(t *testing.T) {
	dir := t.TempDir()
	r := runRaw("", nil, "--connection", dir, "org", "list")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	wantContains(t, r.stderr, "cannot read connection file "+dir+": is a directory")
}

func TestConnectionFile_MissingWithAddr(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.json")
	r := runRaw("", nil, "--connection", missing, "--addr", "127.0.0.1:1", "org", "list")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	wantContains(t, r.stderr, "admin credentials missing", missing+" does not exist",
		"--tls-cert")
}

func TestCompletion_UnsupportedShell(t *testing.T) {
	r := runRaw("", nil, "completion", "tcsh")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	wantContains(t, r.stderr, `unsupported shell "tcsh"`, "bash", "zsh", "fish", "powershell")
	if r.stdout != "" {
		t.Errorf("stdout: %q, want nothing", r.stdout)
	}
}

func TestCompletion_NoShell(t *testing.T) {
	r := runRaw("", nil, "completion")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	wantContains(t, r.stderr, "no shell given", "bash|")
}

func TestCompletion_EveryShell(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := runRaw("", nil, "completion", shell)
		if r.code != exitOK || !strings.Contains(r.stdout, "anchorctl") {
			t.Errorf("completion %s: exit %d, %d bytes: %s", shell, r.code, len(r.stdout), r.stderr)
		}
	}
}

func TestGroup_UnknownSubcommand(t *testing.T) {
	r := runRaw("", nil, "cert", "revok")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	wantContains(t, r.stderr, `unknown command "revok" for "anchorctl cert"`, "revoke")
}

func TestGroup_NoSubcommandPrintsHelp(t *testing.T) {
	r := runRaw("", nil, "cluster")
	if r.code != exitOK {
		t.Errorf("exit %d, want %d: %s", r.code, exitOK, r.stderr)
	}
	wantContains(t, r.stdout, "status", "snapshot")
}

func TestAdminIssueCert_DefaultOutBesideConnectionFile(t *testing.T) {
	caDir := filepath.Join(t.TempDir(), "internal-ca")
	if _, err := cluster.CreateInternalCA(caDir, "test"); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	args := []string{"--connection", filepath.Join(dataDir, "cluster.json"), "admin", "issue-cert",
		"--ca-dir", caDir, "--name", "erin", "--role", "read-only"}
	r := runRaw("", nil, args...)
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	keyFile := filepath.Join(dataDir, "admin-erin", "admin-key.pem")
	wantContains(t, r.stdout, "export ANCHOR_TLS_KEY="+keyFile)
	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}

	again := runRaw("", nil, args...)
	if again.code != exitUsage {
		t.Errorf("second issue: exit %d, want %d", again.code, exitUsage)
	}
	wantContains(t, again.stderr, "already exists")
	if after, err := os.ReadFile(keyFile); err != nil || string(after) != string(key) {
		t.Errorf("the second issue replaced the key file (read error %v)", err)
	}
}

func TestAdminIssueCert_ConnectionDirMissing(t *testing.T) {
	caDir := filepath.Join(t.TempDir(), "internal-ca")
	if _, err := cluster.CreateInternalCA(caDir, "test"); err != nil {
		t.Fatal(err)
	}
	missingDir := filepath.Join(t.TempDir(), "no-data")
	r := runRaw("", nil, "--connection", filepath.Join(missingDir, "cluster.json"), "admin",
		"issue-cert", "--ca-dir", caDir, "--name", "erin", "--role", "read-only")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	wantContains(t, r.stderr, missingDir, "--out")
	if _, err := os.Stat(missingDir); err == nil {
		t.Errorf("%s was created", missingDir)
	}
}
