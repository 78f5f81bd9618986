package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"anchor/cluster"
	"anchor/hsm"
	"anchor/node"
	softhsmtest "anchor/softhsm-test"
)

func TestCerts_IssuesOnceAndKeepsFiles(t *testing.T) {
	root := t.TempDir()
	args := []string{
		"-ca-dir", filepath.Join(root, "ca"), "-tls-dir", filepath.Join(root, "tls"),
		"-admin-dir", filepath.Join(root, "admin"), "-nodes", "node1,node2",
		"-acme-hosts", "localhost,127.0.0.1",
	}
	if err := runCerts(args, io.Discard); err != nil {
		t.Fatalf("first run: %v", err)
	}
	nodeCert := filepath.Join(root, "tls", "node2", nodeCertName)
	before, err := os.ReadFile(nodeCert)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runCerts(args, &out); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("second run issued again: %s", out.String())
	}
	after, err := os.ReadFile(nodeCert)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("second run replaced node2's certificate")
	}

	dir := filepath.Join(root, "tls", "node2")
	creds, err := cluster.LoadCredentials(cluster.TLSConfig{
		CAFile:   filepath.Join(dir, caCertName),
		CertFile: nodeCert,
		KeyFile:  filepath.Join(dir, "node-key.pem"),
	})
	if err != nil {
		t.Fatalf("load node2 credentials: %v", err)
	}
	if creds.NodeID() != "node2" {
		t.Errorf("node certificate names %q, want node2", creds.NodeID())
	}
	for _, name := range []string{"server.pem", "server-key.pem"} {
		if !exists(filepath.Join(dir, name)) {
			t.Errorf("%s missing in %s", name, dir)
		}
	}
	if !exists(filepath.Join(root, "admin", adminCertName)) {
		t.Error("admin certificate missing")
	}
}

func TestCerts_NodesRequired(t *testing.T) {
	err := runCerts([]string{"-ca-dir", t.TempDir()}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-nodes") {
		t.Fatalf("got %v, want an error naming -nodes", err)
	}
}

func TestNode_InitializesTokenAndWritesLoadableConfig(t *testing.T) {
	module, err := softhsmtest.ModulePath()
	if err != nil {
		t.Skip(err)
	}
	root := t.TempDir()
	hsmDir := filepath.Join(root, "hsm")
	t.Setenv("SOFTHSM2_CONF", filepath.Join(hsmDir, softhsmConfName))
	args := []string{
		"-id", "node1", "-nodes", "node1,node2,node3", "-bootstrap",
		"-public-urls", "http://localhost:18081,http://localhost:18082,http://localhost:18083",
		"-eab-identifiers", "*.anchor.test", "-hsm-dir", hsmDir,
		"-tls-dir", filepath.Join(root, "tls"), "-data-dir", filepath.Join(root, "data"),
		"-module", module,
	}
	if err := runNode(args, io.Discard); err != nil {
		t.Fatalf("first start: %v", err)
	}
	pin, err := os.ReadFile(filepath.Join(hsmDir, pinName))
	if err != nil {
		t.Fatalf("PIN file: %v", err)
	}
	info, err := os.Stat(filepath.Join(hsmDir, pinName))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("PIN file mode %v, want 0600", info.Mode().Perm())
	}

	cfg, err := node.LoadConfig(filepath.Join(root, "data", "node.json"))
	if err != nil {
		t.Fatalf("load written config: %v", err)
	}
	if cfg.RaftAddr != "node1:7000" || len(cfg.Peers) != 3 || cfg.Peers[2].GRPCAddr != "node3:7001" {
		t.Errorf("addresses: raft %s, peers %+v", cfg.RaftAddr, cfg.Peers)
	}
	if cfg.Bootstrap == nil || len(cfg.Bootstrap.EABIdentifiers) != 1 {
		t.Errorf("bootstrap: %+v", cfg.Bootstrap)
	}

	h, err := hsm.Open(cfg.HSM, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("open the new token with the PIN file: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	if err := runNode(args, io.Discard); err != nil {
		t.Fatalf("second start: %v", err)
	}
	again, err := os.ReadFile(filepath.Join(hsmDir, pinName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pin, again) {
		t.Error("second start replaced the PIN")
	}
}

func TestNode_RejectsAnotherNodesToken(t *testing.T) {
	dir := t.TempDir()
	label := filepath.Join(dir, labelName)
	if err := os.WriteFile(label, []byte("anchor-node2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := openOrInitToken(dir, "/nonexistent.so", "anchor-node1", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "another node") {
		t.Fatalf("got %v, want an error about another node's volume", err)
	}
}
