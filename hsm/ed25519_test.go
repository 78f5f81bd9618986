package hsm_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha512"
	"errors"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"anchor/hsm"

	"github.com/miekg/pkcs11"
)

func TestGenerateKey_Ed25519SensitiveAndWrapOnly(t *testing.T) {
	token := newToken(t, "ed25519-attributes")
	h := openHSM(t, token, nil)
	if _, err := h.GenerateKey("ca-1", hsm.Ed25519); err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	raw := openRawToken(t, token)
	private := raw.findObject(t, pkcs11.CKO_PRIVATE_KEY, "ca-1")

	if !raw.boolAttribute(t, private, pkcs11.CKA_SENSITIVE) {
		t.Error("CKA_SENSITIVE = false, want true")
	}
	if !raw.boolAttribute(t, private, pkcs11.CKA_SIGN) {
		t.Error("CKA_SIGN = false, want true")
	}
	_, err := raw.ctx.GetAttributeValue(raw.session, private,
		[]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err != pkcs11.Error(pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
		t.Fatalf("reading CKA_VALUE: %v, want CKR_ATTRIBUTE_SENSITIVE", err)
	}
}

func TestSigner_Ed25519FoundAfterReopen(t *testing.T) {
	token := newToken(t, "ed25519-reopen")
	h := openHSM(t, token, nil)
	generated, err := h.GenerateKey("ca-1", hsm.Ed25519)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	reopened := openHSM(t, token, nil)
	signer, err := reopened.Signer("ca-1")
	if err != nil {
		t.Fatalf("Signer: %v", err)
	}
	if !signer.Public().(ed25519.PublicKey).Equal(generated.Public()) {
		t.Fatal("Signer after reopen returned a different public key")
	}
	signAndVerify(t, signer, generated.Public(), crypto.Hash(0))
}

func TestSigner_Ed25519RejectsPrehashAndContext(t *testing.T) {
	token := newToken(t, "ed25519-opts")
	h := openHSM(t, token, nil)
	signer, err := h.GenerateKey("ca-1", hsm.Ed25519)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	digest := sha512.Sum512([]byte("message"))

	if _, err := signer.Sign(nil, digest[:], crypto.SHA512); err == nil {
		t.Error("Sign with crypto.SHA512 (Ed25519ph) succeeded")
	}
	if _, err := signer.Sign(nil, digest[:], &ed25519.Options{Hash: crypto.SHA512}); err == nil {
		t.Error("Sign with ed25519.Options{Hash: SHA512} succeeded")
	}
	if _, err := signer.Sign(nil, []byte("message"), &ed25519.Options{Context: "x"}); err == nil {
		t.Error("Sign with an Ed25519ctx context succeeded")
	}
}

func TestSigner_Ed25519RecoversAfterSessionsClosed(t *testing.T) {
	token := newToken(t, "ed25519-recover")
	logs := &logBuffer{}
	h := openHSM(t, token, slog.New(slog.NewTextHandler(logs, nil)))
	signer, err := h.GenerateKey("ca-1", hsm.Ed25519)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	signAndVerify(t, signer, signer.Public(), crypto.Hash(0))

	raw := openRawToken(t, token)
	if err := raw.ctx.CloseAllSessions(raw.slot); err != nil {
		t.Fatalf("C_CloseAllSessions: %v", err)
	}

	signAndVerify(t, signer, signer.Public(), crypto.Hash(0))
	if !strings.Contains(logs.String(), "hsm reopened") {
		t.Fatalf("signing after C_CloseAllSessions did not reopen the token; log:\n%s", logs)
	}
}

// TestSigner_Ed25519ConcurrentBeyondPool signs from more goroutines than the pool has
// sessions, while the sessions are pulled away underneath.
func TestSigner_Ed25519ConcurrentBeyondPool(t *testing.T) {
	token := newToken(t, "ed25519-concurrent")
	cfg := token.HSMConfig()
	cfg.MaxSessions = 2
	h, err := hsm.Open(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	signer, err := h.GenerateKey("ca-1", hsm.Ed25519)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	public := signer.Public().(ed25519.PublicKey)
	raw := openRawToken(t, token)
	message := []byte("concurrent")

	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for range workers {
		wg.Go(func() {
			for range rounds {
				signature, err := signer.Sign(nil, message, crypto.Hash(0))
				if err == nil && !ed25519.Verify(public, message, signature) {
					err = errors.New("ed25519.Verify rejected the signature")
				}
				errs <- err
			}
		})
	}
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

// TestWrapKey_Ed25519 moves an Ed25519 key to a second token where the token can wrap
// it. SoftHSM2 2.6.1 cannot (CKR_KEY_NOT_WRAPPABLE), so there the test checks that
// WrapKey reports ErrKeyNotWrappable and leaves the key on the sending token.
func TestWrapKey_Ed25519(t *testing.T) {
	tokenA, tokenB := newTokenPair(t)
	nodeA := openHSM(t, tokenA, nil)
	nodeB := openHSM(t, tokenB, nil)
	original, err := nodeA.GenerateKey("ca-1", hsm.Ed25519)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	recipient, err := nodeB.TransportPublicKey()
	if err != nil {
		t.Fatalf("TransportPublicKey: %v", err)
	}

	transportKey, wrappedKey, err := nodeA.WrapKey("ca-1", recipient)
	if errors.Is(err, hsm.ErrKeyNotWrappable) {
		if !strings.Contains(err.Error(), "CKR_KEY_NOT_WRAPPABLE") {
			t.Errorf("error %q does not name the PKCS#11 return value", err)
		}
		signAndVerify(t, original, original.Public(), crypto.Hash(0))
		t.Logf("token cannot wrap Ed25519 keys: %v", err)
		return
	}
	if err != nil {
		t.Fatalf("WrapKey: %v", err)
	}
	imported, err := nodeB.UnwrapKey("ca-1", hsm.Ed25519, original.Public(), transportKey,
		wrappedKey)
	if err != nil {
		t.Fatalf("UnwrapKey: %v", err)
	}
	signAndVerify(t, imported, original.Public(), crypto.Hash(0))
}

// TestSigner_Ed25519OpenSSLVerifies checks an Ed25519 signature with openssl as an
// independent verifier.
func TestSigner_Ed25519OpenSSLVerifies(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	token := newToken(t, "ed25519-openssl")
	h := openHSM(t, token, nil)
	signer, err := h.GenerateKey("ca-1", hsm.Ed25519)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	message := []byte("anchor openssl check")
	signature, err := signer.Sign(nil, message, crypto.Hash(0))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}

	files := writeVerifyInputs(t, t.TempDir(), signer.Public(), message, signature)
	out, err := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", files[0],
		"-rawin", "-sigfile", files[1], "-in", files[2]).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkeyutl -verify: %v: %s", err, out)
	}

	message[0] ^= 1
	files = writeVerifyInputs(t, t.TempDir(), signer.Public(), message, signature)
	if err := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", files[0],
		"-rawin", "-sigfile", files[1], "-in", files[2]).Run(); err == nil {
		t.Fatal("openssl accepted the signature for a modified message")
	}
}
