package hsm_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"anchor/hsm"
)

func TestSigner_RecoversAfterSessionsClosed(t *testing.T) {
	token := newToken(t, "recover-sessions")
	logs := &logBuffer{}
	h := openHSM(t, token, slog.New(slog.NewTextHandler(logs, nil)))
	signer, err := h.GenerateKey("ca-1", hsm.ECDSAP256)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	signAndVerify(t, signer, signer.Public(), crypto.SHA256)

	raw := openRawToken(t, token)
	if err := raw.ctx.CloseAllSessions(raw.slot); err != nil {
		t.Fatalf("C_CloseAllSessions: %v", err)
	}

	signAndVerify(t, signer, signer.Public(), crypto.SHA256)
	if !strings.Contains(logs.String(), "hsm reopened") {
		t.Fatalf("signing after C_CloseAllSessions did not reopen the token; log:\n%s", logs)
	}
	signAndVerify(t, signer, signer.Public(), crypto.SHA256)
}

func TestSigner_RecoversAfterLogout(t *testing.T) {
	token := newToken(t, "recover-logout")
	logs := &logBuffer{}
	h := openHSM(t, token, slog.New(slog.NewTextHandler(logs, nil)))
	signer, err := h.GenerateKey("ca-1", hsm.RSA2048)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	signAndVerify(t, signer, signer.Public(), crypto.SHA256)

	raw := openRawToken(t, token)
	if err := raw.ctx.Logout(raw.session); err != nil {
		t.Fatalf("C_Logout: %v", err)
	}

	signAndVerify(t, signer, signer.Public(), crypto.SHA256)
	if !strings.Contains(logs.String(), "hsm reopened") {
		t.Fatalf("signing after C_Logout did not reopen the token; log:\n%s", logs)
	}
}

func TestSigner_WrapWorksAfterSessionsClosed(t *testing.T) {
	tokenA, tokenB := newTokenPair(t)
	nodeA := openHSM(t, tokenA, nil)
	nodeB := openHSM(t, tokenB, nil)
	recipient, err := nodeB.TransportPublicKey()
	if err != nil {
		t.Fatalf("TransportPublicKey: %v", err)
	}
	if _, err := nodeA.GenerateKey("ca-1", hsm.ECDSAP256); err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}

	raw := openRawToken(t, tokenA)
	if err := raw.ctx.CloseAllSessions(raw.slot); err != nil {
		t.Fatalf("C_CloseAllSessions: %v", err)
	}
	if _, _, err := nodeA.WrapKey("ca-1", recipient); err != nil {
		t.Fatalf("WrapKey after C_CloseAllSessions: %v", err)
	}
}

func TestSigner_ConcurrentSignAcrossSessionLoss(t *testing.T) {
	token := newToken(t, "concurrent")
	h := openHSM(t, token, nil)
	signer, err := h.GenerateKey("ca-1", hsm.ECDSAP256)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	public := signer.Public().(*ecdsa.PublicKey)
	raw := openRawToken(t, token)
	digest := sha256.Sum256([]byte("concurrent"))

	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for range workers {
		wg.Go(func() {
			for range rounds {
				signature, err := signer.Sign(nil, digest[:], crypto.SHA256)
				if err == nil && !ecdsa.VerifyASN1(public, digest[:], signature) {
					err = errors.New("ecdsa.VerifyASN1 rejected the signature")
				}
				errs <- err
			}
		})
	}
	// Pull the sessions away while the workers sign.
	if err := raw.ctx.CloseAllSessions(raw.slot); err != nil {
		t.Fatalf("C_CloseAllSessions: %v", err)
	}
	wg.Wait()
	close(errs)

	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Sign: %v", err)
		}
	}
}
