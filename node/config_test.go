package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeConfig writes a minimal valid configuration with extra JSON fields
// appended and returns its path.
func writeConfig(t *testing.T, extra string) string {
	t.Helper()
	cfg := `{
  "node_id": "node1", "data_dir": "/var/lib/anchor", "raft_addr": "127.0.0.1:7001",
  "grpc_addr": "127.0.0.1:7002", "http_addr": "127.0.0.1:7003", "acme_addr": "127.0.0.1:7004",
  "public_urls": ["http://127.0.0.1:7003"],
  "hsm": {"module_path": "/usr/lib/softhsm/libsofthsm2.so", "token_label": "node1", "pin_file": "/run/pin"},
  "tls": {"ca_file": "ca.pem", "cert_file": "node.pem", "key_file": "node.key"},
  "acme": {"tls_cert_file": "acme.pem", "tls_key_file": "acme.key"}` + extra + `
}`
	path := filepath.Join(t.TempDir(), "node.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfig_SnapshotSettingsReachRaft(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t,
		`, "snapshot_threshold": 500, "snapshot_interval": "30s", "trailing_logs": 2000`))
	if err != nil {
		t.Fatal(err)
	}
	cc := cfg.clusterConfig(nil)
	if cc.SnapshotThreshold != 500 {
		t.Errorf("snapshot threshold %d, want 500", cc.SnapshotThreshold)
	}
	if cc.SnapshotInterval != 30*time.Second {
		t.Errorf("snapshot interval %s, want 30s", cc.SnapshotInterval)
	}
	if cc.TrailingLogs != 2000 {
		t.Errorf("trailing logs %d, want 2000", cc.TrailingLogs)
	}
}

func TestLoadConfig_RejectsShortSnapshotInterval(t *testing.T) {
	_, err := LoadConfig(writeConfig(t, `, "snapshot_interval": "1ms"`))
	if err == nil || !strings.Contains(err.Error(), "snapshot_interval") {
		t.Fatalf("error %v, want one that names snapshot_interval", err)
	}
}

func TestLoadConfig_CommitTimeoutReachesRaft(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, `, "commit_timeout": "25ms"`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.clusterConfig(nil).CommitTimeout; got != 25*time.Millisecond {
		t.Errorf("commit timeout %s, want 25ms", got)
	}
}

func TestLoadConfig_StateSyncReachesCluster(t *testing.T) {
	for _, tc := range []struct {
		extra string
		want  bool
	}{{"", false}, {`, "state_sync": true`, true}} {
		cfg, err := LoadConfig(writeConfig(t, tc.extra))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.clusterConfig(nil).StateSync; got != tc.want {
			t.Errorf("config %q: state sync %v, want %v", tc.extra, got, tc.want)
		}
	}
}
