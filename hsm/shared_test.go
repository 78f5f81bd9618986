package hsm_test

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"anchor/hsm"
	softhsmtest "anchor/softhsm-test"
)

// openShared opens token with Config.Shared set, as one node of a cluster that shares
// a network HSM.
func openShared(t *testing.T, token *softhsmtest.Token) *hsm.HSM {
	t.Helper()
	cfg := token.HSMConfig()
	cfg.Shared = true
	h, err := hsm.Open(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// TestShared_SecondInstanceSignsWithFirstKeys opens one token twice, as two nodes
// reaching the same network HSM: keys generated through one are usable through the other.
func TestShared_SecondInstanceSignsWithFirstKeys(t *testing.T) {
	token := newToken(t, "shared")
	nodeA := openShared(t, token)
	nodeB := openShared(t, token)
	if !nodeA.Shared() || !nodeB.Shared() {
		t.Fatal("Shared() = false with Config.Shared set")
	}

	tests := []struct {
		alg  hsm.Algorithm
		opts crypto.SignerOpts
	}{
		{hsm.ECDSAP256, crypto.SHA256},
		{hsm.RSA2048, crypto.SHA256},
		{hsm.Ed25519, crypto.Hash(0)},
	}
	for _, tt := range tests {
		t.Run(string(tt.alg), func(t *testing.T) {
			id := "ca-" + string(tt.alg)
			if nodeB.HasKey(id) {
				t.Fatal("HasKey on B = true before A generated the key")
			}
			generated, err := nodeA.GenerateKey(id, tt.alg)
			if err != nil {
				t.Fatalf("GenerateKey on A: %v", err)
			}
			if !nodeB.HasKey(id) {
				t.Fatal("HasKey on B = false after A generated the key")
			}
			signer, err := nodeB.Signer(id)
			if err != nil {
				t.Fatalf("Signer on B: %v", err)
			}
			signAndVerify(t, signer, generated.Public(), tt.opts)
		})
	}
}

func TestShared_NoTransportOrWrapping(t *testing.T) {
	token := newToken(t, "shared-nowrap")
	h := openShared(t, token)
	signer, err := h.GenerateKey("ca-1", hsm.ECDSAP256)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}

	if _, err := h.TransportPublicKey(); !errors.Is(err, hsm.ErrShared) {
		t.Errorf("TransportPublicKey error = %v, want ErrShared", err)
	}
	if _, _, err := h.WrapKey("ca-1", &rsa.PublicKey{}); !errors.Is(err, hsm.ErrShared) {
		t.Errorf("WrapKey error = %v, want ErrShared", err)
	}
	_, err = h.UnwrapKey("ca-1", hsm.ECDSAP256, signer.Public(), []byte{1}, []byte{1})
	if !errors.Is(err, hsm.ErrShared) {
		t.Errorf("UnwrapKey error = %v, want ErrShared", err)
	}
}

// TestShared_CloseOneInstanceKeepsOther closes one of two instances on the same token:
// the other keeps its login and signs without reopening.
func TestShared_CloseOneInstanceKeepsOther(t *testing.T) {
	token := newToken(t, "shared-close")
	nodeA := openShared(t, token)
	logs := &logBuffer{}
	cfg := token.HSMConfig()
	cfg.Shared = true
	nodeB, err := hsm.Open(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("Open B: %v", err)
	}
	t.Cleanup(func() { _ = nodeB.Close() })
	if _, err := nodeA.GenerateKey("ca-1", hsm.Ed25519); err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	signer, err := nodeB.Signer("ca-1")
	if err != nil {
		t.Fatalf("Signer on B: %v", err)
	}
	signAndVerify(t, signer, signer.Public(), crypto.Hash(0))

	if err := nodeA.Close(); err != nil {
		t.Fatalf("Close A: %v", err)
	}
	signAndVerify(t, signer, signer.Public(), crypto.Hash(0))
	if got := logs.String(); strings.Contains(got, "hsm reopened") {
		t.Fatalf("closing A made B reopen the token; log:\n%s", got)
	}
}
