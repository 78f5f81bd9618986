package softhsmtest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"anchor/hsm"
	softhsmtest "anchor/softhsm-test"
)

func TestModulePath_Found(t *testing.T) {
	path, err := softhsmtest.ModulePath()
	if err != nil {
		t.Fatalf("ModulePath: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("ModulePath returned %s: %v", path, err)
	}
}

func TestNewToken_WritesFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	token, err := softhsmtest.NewToken(dir, "node-1")
	if err != nil {
		t.Fatalf("NewToken: %v", err)
	}

	info, err := os.Stat(filepath.Join(dir, "pin"))
	if err != nil {
		t.Fatalf("stat pin file: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("pin file mode = %v, want 0600", info.Mode().Perm())
	}
	pin, err := os.ReadFile(filepath.Join(dir, "pin"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(pin)) != token.PIN || len(token.PIN) != 32 {
		t.Errorf("pin file holds %q, token.PIN = %q (want 32 hex digits)", pin, token.PIN)
	}

	config, err := os.ReadFile(token.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(config), "directories.tokendir = "+filepath.Join(dir, "tokens")) {
		t.Errorf("softhsm2.conf does not name dir/tokens:\n%s", config)
	}
	if os.Getenv(softhsmtest.ConfigEnv) == token.ConfigPath {
		t.Error("NewToken changed SOFTHSM2_CONF in the test process")
	}
}

func TestNewToken_RandomPINs(t *testing.T) {
	first, err := softhsmtest.NewToken(filepath.Join(t.TempDir(), "a"), "a")
	if err != nil {
		t.Fatalf("NewToken: %v", err)
	}
	second, err := softhsmtest.NewToken(filepath.Join(t.TempDir(), "b"), "b")
	if err != nil {
		t.Fatalf("NewToken: %v", err)
	}
	if first.PIN == second.PIN {
		t.Fatal("two tokens received the same PIN")
	}
}

func TestNewToken_InvalidLabel(t *testing.T) {
	for _, label := range []string{"", "has space", strings.Repeat("x", 33), "../up"} {
		if _, err := softhsmtest.NewToken(t.TempDir(), label); err == nil {
			t.Errorf("NewToken accepted label %q", label)
		}
	}
}

func TestOpenToken_ReadsNewToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	created, err := softhsmtest.NewToken(dir, "node-1")
	if err != nil {
		t.Fatalf("NewToken: %v", err)
	}
	opened, err := softhsmtest.OpenToken(dir)
	if err != nil {
		t.Fatalf("OpenToken: %v", err)
	}
	if *opened != *created {
		t.Fatalf("OpenToken = %+v, want %+v", opened, created)
	}
}

func TestOpenToken_MissingDirectory(t *testing.T) {
	_, err := softhsmtest.OpenToken(filepath.Join(t.TempDir(), "absent"))
	if err == nil || !strings.Contains(err.Error(), "NewToken") {
		t.Fatalf("OpenToken error = %v, want a hint to call NewToken", err)
	}
}

func TestAddToken_SharesTokenDirectory(t *testing.T) {
	first, err := softhsmtest.NewToken(filepath.Join(t.TempDir(), "cluster"), "node-a")
	if err != nil {
		t.Fatalf("NewToken: %v", err)
	}
	second, err := first.AddToken("node-b")
	if err != nil {
		t.Fatalf("AddToken: %v", err)
	}
	if second.TokenDir != first.TokenDir {
		t.Fatalf("TokenDir = %s, want %s", second.TokenDir, first.TokenDir)
	}
	if _, err := first.AddToken("node-a"); err == nil {
		t.Fatal("AddToken accepted the label of the first token")
	}

	reopened, err := softhsmtest.OpenToken(second.Dir)
	if err != nil {
		t.Fatalf("OpenToken: %v", err)
	}
	if *reopened != *second {
		t.Fatalf("OpenToken = %+v, want %+v", reopened, second)
	}

	cmd := exec.Command("softhsm2-util", "--show-slots")
	cmd.Env = first.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --show-slots: %v: %s", err, out)
	}
	for _, label := range []string{"node-a", "node-b"} {
		if !strings.Contains(string(out), label) {
			t.Errorf("token %s not listed by softhsm2-util:\n%s", label, out)
		}
	}
}

// TestHSMConfig_OpensBothTokensInOneProcess opens two tokens made with AddToken in one
// process and signs on each.
func TestHSMConfig_OpensBothTokensInOneProcess(t *testing.T) {
	first, err := softhsmtest.NewToken(filepath.Join(t.TempDir(), "cluster"), "node-a")
	if err != nil {
		t.Fatalf("NewToken: %v", err)
	}
	second, err := first.AddToken("node-b")
	if err != nil {
		t.Fatalf("AddToken: %v", err)
	}
	t.Setenv(softhsmtest.ConfigEnv, first.ConfigPath)

	for _, token := range []*softhsmtest.Token{first, second} {
		h, err := hsm.Open(token.HSMConfig(), nil)
		if err != nil {
			t.Fatalf("Open %s: %v", token.Label, err)
		}
		defer h.Close()
		signer, err := h.GenerateKey("ca-1", hsm.ECDSAP256)
		if err != nil {
			t.Fatalf("GenerateKey on %s: %v", token.Label, err)
		}
		digest := sha256.Sum256([]byte(token.Label))
		signature, err := signer.Sign(nil, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatalf("Sign on %s: %v", token.Label, err)
		}
		if !ecdsa.VerifyASN1(signer.Public().(*ecdsa.PublicKey), digest[:], signature) {
			t.Fatalf("signature from %s does not verify", token.Label)
		}
	}
}
