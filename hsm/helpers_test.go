package hsm_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"anchor/hsm"
	softhsmtest "anchor/softhsm-test"

	"github.com/miekg/pkcs11"
)

// newToken creates a SoftHSM2 token in a temporary directory and points SOFTHSM2_CONF
// at it for the rest of the test.
func newToken(t testing.TB, label string) *softhsmtest.Token {
	t.Helper()
	token, err := softhsmtest.NewToken(filepath.Join(t.TempDir(), label), label)
	if err != nil {
		t.Fatalf("NewToken: %v", err)
	}
	t.Setenv(softhsmtest.ConfigEnv, token.ConfigPath)
	return token
}

// newTokenPair creates two tokens in one SoftHSM2 configuration, as two nodes.
func newTokenPair(t *testing.T) (*softhsmtest.Token, *softhsmtest.Token) {
	t.Helper()
	first := newToken(t, "node-a")
	second, err := first.AddToken("node-b")
	if err != nil {
		t.Fatalf("AddToken: %v", err)
	}
	return first, second
}

// openHSM opens token and closes it when the test ends.
func openHSM(t testing.TB, token *softhsmtest.Token, logger *slog.Logger) *hsm.HSM {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	h, err := hsm.Open(token.HSMConfig(), logger)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// logBuffer collects log output from concurrent goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// rawToken is a direct PKCS#11 session on a token, for inspecting objects and for
// breaking sessions underneath the hsm package. Create it after hsm.Open, because
// crypto11 must be the one that calls C_Initialize.
type rawToken struct {
	ctx     *pkcs11.Ctx
	slot    uint
	session pkcs11.SessionHandle
}

func openRawToken(t testing.TB, token *softhsmtest.Token) *rawToken {
	t.Helper()
	ctx := pkcs11.New(token.ModulePath)
	if ctx == nil {
		t.Fatalf("load module %s failed", token.ModulePath)
	}
	t.Cleanup(ctx.Destroy)
	err := ctx.Initialize()
	if err == nil {
		t.Fatal("raw C_Initialize succeeded: open the HSM first")
	}
	if err != pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.Fatalf("C_Initialize: %v", err)
	}

	raw := &rawToken{ctx: ctx, slot: findSlot(t, ctx, token.Label)}
	raw.session, err = ctx.OpenSession(raw.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatalf("C_OpenSession: %v", err)
	}
	t.Cleanup(func() { _ = ctx.CloseSession(raw.session) })
	err = ctx.Login(raw.session, pkcs11.CKU_USER, token.PIN)
	if err != nil && err != pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		t.Fatalf("C_Login: %v", err)
	}
	return raw
}

func findSlot(t testing.TB, ctx *pkcs11.Ctx, label string) uint {
	t.Helper()
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		t.Fatalf("C_GetSlotList: %v", err)
	}
	for _, slot := range slots {
		info, err := ctx.GetTokenInfo(slot)
		if err == nil && info.Label == label {
			return slot
		}
	}
	t.Fatalf("token %q not found", label)
	return 0
}

// findObject returns the single object with the given class and CKA_ID.
func (r *rawToken) findObject(t testing.TB, class uint, id string) pkcs11.ObjectHandle {
	t.Helper()
	template := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id)),
	}
	if err := r.ctx.FindObjectsInit(r.session, template); err != nil {
		t.Fatalf("C_FindObjectsInit: %v", err)
	}
	handles, _, err := r.ctx.FindObjects(r.session, 10)
	if err != nil {
		t.Fatalf("C_FindObjects: %v", err)
	}
	if err := r.ctx.FindObjectsFinal(r.session); err != nil {
		t.Fatalf("C_FindObjectsFinal: %v", err)
	}
	if len(handles) != 1 {
		t.Fatalf("found %d objects of class %d with id %q, want 1", len(handles), class, id)
	}
	return handles[0]
}

// boolAttribute reads a CK_BBOOL attribute.
func (r *rawToken) boolAttribute(t testing.TB, object pkcs11.ObjectHandle, attr uint) bool {
	t.Helper()
	values, err := r.ctx.GetAttributeValue(r.session, object,
		[]*pkcs11.Attribute{pkcs11.NewAttribute(attr, nil)})
	if err != nil {
		t.Fatalf("C_GetAttributeValue(%#x): %v", attr, err)
	}
	return len(values[0].Value) == 1 && values[0].Value[0] == 1
}

// verifySignature checks signature over digest (for Ed25519 the message) with the
// standard library.
func verifySignature(t testing.TB, pub crypto.PublicKey, digest, signature []byte,
	opts crypto.SignerOpts) {
	t.Helper()
	switch key := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(key, digest, signature) {
			t.Fatal("ecdsa.VerifyASN1 rejected the signature")
		}
	case *rsa.PublicKey:
		var err error
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			err = rsa.VerifyPSS(key, pss.Hash, digest, signature, pss)
		} else {
			err = rsa.VerifyPKCS1v15(key, opts.HashFunc(), digest, signature)
		}
		if err != nil {
			t.Fatalf("RSA verification failed: %v", err)
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(key, digest, signature) {
			t.Fatal("ed25519.Verify rejected the signature")
		}
	default:
		t.Fatalf("unexpected public key type %T", pub)
	}
}

// digestFor returns the digest of message for the hash of opts, or message itself
// for crypto.Hash(0), as Ed25519 signs the whole message.
func digestFor(t testing.TB, message []byte, opts crypto.SignerOpts) []byte {
	t.Helper()
	switch opts.HashFunc() {
	case crypto.Hash(0):
		return message
	case crypto.SHA256:
		sum := sha256.Sum256(message)
		return sum[:]
	case crypto.SHA384:
		sum := sha512.Sum384(message)
		return sum[:]
	default:
		t.Fatalf("unexpected hash %v", opts.HashFunc())
		return nil
	}
}

// signAndVerify signs message with signer and verifies the signature with pub.
func signAndVerify(t testing.TB, signer crypto.Signer, pub crypto.PublicKey,
	opts crypto.SignerOpts) {
	t.Helper()
	digest := digestFor(t, []byte("anchor test message"), opts)
	signature, err := signer.Sign(nil, digest, opts)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	verifySignature(t, pub, digest, signature, opts)
}

// discardLogger drops log output, for benchmarks.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
