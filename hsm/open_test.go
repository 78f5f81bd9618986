package hsm_test

import (
	"crypto"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"anchor/hsm"
)

func TestOpen_WrongPIN(t *testing.T) {
	token := newToken(t, "wrong-pin")
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte("not-the-pin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := token.HSMConfig()
	cfg.PINFile = pinFile

	h, err := hsm.Open(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err == nil {
		_ = h.Close()
		t.Fatal("Open with a wrong PIN succeeded")
	}
	if !strings.Contains(err.Error(), "PIN") || !strings.Contains(err.Error(), pinFile) {
		t.Fatalf("error %q does not name the PIN and its file", err)
	}
	if strings.Contains(err.Error(), "not-the-pin") {
		t.Fatalf("error %q contains the PIN", err)
	}
}

func TestOpen_MissingModule(t *testing.T) {
	token := newToken(t, "missing-module")
	cfg := token.HSMConfig()
	cfg.ModulePath = filepath.Join(t.TempDir(), "libmissing-pkcs11.so")

	h, err := hsm.Open(cfg, nil)
	if err == nil {
		_ = h.Close()
		t.Fatal("Open with a missing module succeeded")
	}
	if !strings.Contains(err.Error(), cfg.ModulePath) {
		t.Fatalf("error %q does not name the module path", err)
	}
}

func TestOpen_UnknownToken(t *testing.T) {
	token := newToken(t, "present")
	cfg := token.HSMConfig()
	cfg.TokenLabel = "absent"

	h, err := hsm.Open(cfg, nil)
	if err == nil {
		_ = h.Close()
		t.Fatal("Open with an unknown token label succeeded")
	}
	if !strings.Contains(err.Error(), `"absent"`) || !strings.Contains(err.Error(), `"present"`) {
		t.Fatalf("error %q does not name the requested and the present tokens", err)
	}

	// The failed Open must leave the module usable for the next one.
	openHSM(t, token, nil)
}

func TestOpen_FailureLeavesOtherHSMOpen(t *testing.T) {
	tokenA, tokenB := newTokenPair(t)
	logs := &logBuffer{}
	nodeA := openHSM(t, tokenA, slog.New(slog.NewTextHandler(logs, nil)))
	signer, err := nodeA.GenerateKey("ca-1", hsm.ECDSAP256)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}

	wrongPIN := tokenB.HSMConfig()
	wrongPIN.PINFile = filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(wrongPIN.PINFile, []byte("0000"), 0o600); err != nil {
		t.Fatal(err)
	}
	unknownLabel := tokenB.HSMConfig()
	unknownLabel.TokenLabel = "absent"
	for _, cfg := range []hsm.Config{wrongPIN, unknownLabel} {
		if h, err := hsm.Open(cfg, nil); err == nil {
			_ = h.Close()
			t.Fatalf("Open of token %q with PIN file %s succeeded", cfg.TokenLabel, cfg.PINFile)
		}
	}

	signAndVerify(t, signer, signer.Public(), crypto.SHA256)
	if strings.Contains(logs.String(), "hsm reopened") {
		t.Fatalf("a failed Open of another token disturbed the open HSM; log:\n%s", logs)
	}
}

func TestOpen_PINFromEnvironment(t *testing.T) {
	token := newToken(t, "pin-env")
	t.Setenv("ANCHOR_TEST_HSM_PIN", token.PIN)
	cfg := token.HSMConfig()
	cfg.PINFile = ""
	cfg.PINEnv = "ANCHOR_TEST_HSM_PIN"

	h, err := hsm.Open(cfg, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer h.Close()
	signer, err := h.GenerateKey("ca-1", hsm.ECDSAP256)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	signAndVerify(t, signer, signer.Public(), crypto.SHA256)
}

func TestOpen_InvalidConfig(t *testing.T) {
	token := newToken(t, "config")
	tests := []struct {
		name   string
		change func(*hsm.Config)
		field  string
	}{
		{"no module", func(c *hsm.Config) { c.ModulePath = "" }, "module_path"},
		{"no label", func(c *hsm.Config) { c.TokenLabel = "" }, "token_label"},
		{"no pin source", func(c *hsm.Config) { c.PINFile = "" }, "pin_file"},
		{"two pin sources", func(c *hsm.Config) { c.PINEnv = "X" }, "pin_env"},
		{"one session", func(c *hsm.Config) { c.MaxSessions = 1 }, "max_sessions"},
		{"unset pin env", func(c *hsm.Config) {
			c.PINFile = ""
			c.PINEnv = "ANCHOR_TEST_UNSET_VARIABLE"
		}, "ANCHOR_TEST_UNSET_VARIABLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := token.HSMConfig()
			tt.change(&cfg)
			h, err := hsm.Open(cfg, nil)
			if err == nil {
				_ = h.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name %s", err, tt.field)
			}
		})
	}
}
