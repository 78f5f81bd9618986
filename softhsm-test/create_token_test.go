package softhsmtest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"anchor/hsm"
	softhsmtest "anchor/softhsm-test"
)

// createToken runs create-token.sh and returns its output and error.
func createToken(t *testing.T, dir, label string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command("sh", "create-token.sh", dir, label)
	cmd.Stderr = t.Output()
	return cmd.Output()
}

// TestCreateTokenScript_OpensLikeNewToken creates a token with the shell script and
// uses it through OpenToken and hsm.Open, as a token from NewToken.
func TestCreateTokenScript_OpensLikeNewToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	out, err := createToken(t, dir, "node-1")
	if err != nil {
		t.Fatalf("create-token.sh: %v", err)
	}
	var printed struct {
		HSM hsm.Config `json:"hsm"`
	}
	if err := json.Unmarshal([]byte("{"+string(out)+"}"), &printed); err != nil {
		t.Fatalf("output is not an hsm configuration section: %v\n%s", err, out)
	}
	for _, name := range []string{"pin", "so-pin"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", name, info.Mode().Perm())
		}
	}

	token, err := softhsmtest.OpenToken(dir)
	if err != nil {
		t.Fatalf("OpenToken: %v", err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(token.PIN) {
		t.Errorf("PIN %q is not 32 hex digits", token.PIN)
	}
	if printed.HSM != token.HSMConfig() {
		t.Errorf("printed configuration %+v, want %+v", printed.HSM, token.HSMConfig())
	}
	t.Setenv(softhsmtest.ConfigEnv, token.ConfigPath)
	h, err := hsm.Open(printed.HSM, nil)
	if err != nil {
		t.Fatalf("hsm.Open: %v", err)
	}
	defer h.Close()
	signer, err := h.GenerateKey("ca-1", hsm.ECDSAP256)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	digest := sha256.Sum256([]byte("create-token.sh"))
	signature, err := signer.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if !ecdsa.VerifyASN1(signer.Public().(*ecdsa.PublicKey), digest[:], signature) {
		t.Fatal("signature does not verify")
	}
}

func TestCreateTokenScript_RandomPINs(t *testing.T) {
	var pins []string
	for _, label := range []string{"a", "b"} {
		dir := filepath.Join(t.TempDir(), label)
		if _, err := createToken(t, dir, label); err != nil {
			t.Fatalf("create-token.sh: %v", err)
		}
		token, err := softhsmtest.OpenToken(dir)
		if err != nil {
			t.Fatalf("OpenToken: %v", err)
		}
		pins = append(pins, token.PIN)
	}
	if pins[0] == pins[1] {
		t.Fatal("two tokens received the same PIN")
	}
}

func TestCreateTokenScript_RejectsReuseAndBadLabel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	if _, err := createToken(t, dir, "node-1"); err != nil {
		t.Fatalf("create-token.sh: %v", err)
	}
	pin, err := os.ReadFile(filepath.Join(dir, "pin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := createToken(t, dir, "node-2"); err == nil {
		t.Error("create-token.sh succeeded on a directory that holds a token")
	}
	again, err := os.ReadFile(filepath.Join(dir, "pin"))
	if err != nil || string(again) != string(pin) {
		t.Error("a refused second run changed the PIN file")
	}
	for _, label := range []string{"has space", "../up", "x23456789012345678901234567890123"} {
		if _, err := createToken(t, filepath.Join(t.TempDir(), "bad"), label); err == nil {
			t.Errorf("create-token.sh accepted label %q", label)
		}
	}
}
