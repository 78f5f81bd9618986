package hsm_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"

	"anchor/hsm"

	"github.com/miekg/pkcs11"
)

func TestUnwrapKey_SignsOnSecondToken(t *testing.T) {
	tokenA, tokenB := newTokenPair(t)
	nodeA := openHSM(t, tokenA, nil)
	nodeB := openHSM(t, tokenB, nil)
	recipient, err := nodeB.TransportPublicKey()
	if err != nil {
		t.Fatalf("TransportPublicKey: %v", err)
	}

	tests := []struct {
		alg  hsm.Algorithm
		opts crypto.SignerOpts
	}{
		{hsm.ECDSAP256, crypto.SHA256},
		{hsm.ECDSAP384, crypto.SHA384},
		{hsm.RSA2048, crypto.SHA256},
	}
	for _, tt := range tests {
		t.Run(string(tt.alg), func(t *testing.T) {
			id := "ca-" + string(tt.alg)
			original, err := nodeA.GenerateKey(id, tt.alg)
			if err != nil {
				t.Fatalf("GenerateKey on A: %v", err)
			}
			transportKey, wrappedKey, err := nodeA.WrapKey(id, recipient)
			if err != nil {
				t.Fatalf("WrapKey on A: %v", err)
			}

			imported, err := nodeB.UnwrapKey(id, tt.alg, original.Public(), transportKey, wrappedKey)
			if err != nil {
				t.Fatalf("UnwrapKey on B: %v", err)
			}
			signAndVerify(t, imported, original.Public(), tt.opts)
			if !nodeB.HasKey(id) {
				t.Fatal("HasKey on B = false after UnwrapKey")
			}
		})
	}
}

func TestUnwrapKey_ImportedKeySensitiveAndWrapOnly(t *testing.T) {
	tokenA, tokenB := newTokenPair(t)
	nodeA := openHSM(t, tokenA, nil)
	nodeB := openHSM(t, tokenB, nil)
	transportKey, wrappedKey, public := wrapNewKey(t, nodeA, nodeB, "ca-1")
	if _, err := nodeB.UnwrapKey("ca-1", hsm.ECDSAP256, public, transportKey,
		wrappedKey); err != nil {
		t.Fatalf("UnwrapKey: %v", err)
	}

	raw := openRawToken(t, tokenB)
	private := raw.findObject(t, pkcs11.CKO_PRIVATE_KEY, "ca-1")
	if !raw.boolAttribute(t, private, pkcs11.CKA_SENSITIVE) {
		t.Error("imported CKA_SENSITIVE = false, want true")
	}
	if !raw.boolAttribute(t, private, pkcs11.CKA_EXTRACTABLE) {
		t.Error("imported CKA_EXTRACTABLE = false, want true (wrap only)")
	}
	if !raw.boolAttribute(t, private, pkcs11.CKA_TOKEN) {
		t.Error("imported CKA_TOKEN = false, want true")
	}
	_, err := raw.ctx.GetAttributeValue(raw.session, private,
		[]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err == nil {
		t.Fatal("reading CKA_VALUE of the imported private key succeeded")
	}
}

func TestUnwrapKey_PassesKeyOnToThirdNode(t *testing.T) {
	tokenA, tokenB := newTokenPair(t)
	tokenC, err := tokenA.AddToken("node-c")
	if err != nil {
		t.Fatalf("AddToken: %v", err)
	}
	nodeA := openHSM(t, tokenA, nil)
	nodeB := openHSM(t, tokenB, nil)
	nodeC := openHSM(t, tokenC, nil)

	transportKey, wrappedKey, public := wrapNewKey(t, nodeA, nodeB, "ca-1")
	if _, err := nodeB.UnwrapKey("ca-1", hsm.ECDSAP256, public, transportKey,
		wrappedKey); err != nil {
		t.Fatalf("UnwrapKey on B: %v", err)
	}
	recipient, err := nodeC.TransportPublicKey()
	if err != nil {
		t.Fatalf("TransportPublicKey on C: %v", err)
	}
	transportKey, wrappedKey, err = nodeB.WrapKey("ca-1", recipient)
	if err != nil {
		t.Fatalf("WrapKey on B: %v", err)
	}
	imported, err := nodeC.UnwrapKey("ca-1", hsm.ECDSAP256, public, transportKey, wrappedKey)
	if err != nil {
		t.Fatalf("UnwrapKey on C: %v", err)
	}
	signAndVerify(t, imported, public, crypto.SHA256)
}

func TestUnwrapKey_WrongPublicKeyRejected(t *testing.T) {
	tokenA, tokenB := newTokenPair(t)
	nodeA := openHSM(t, tokenA, nil)
	nodeB := openHSM(t, tokenB, nil)
	transportKey, wrappedKey, _ := wrapNewKey(t, nodeA, nodeB, "ca-1")
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	_, err = nodeB.UnwrapKey("ca-1", hsm.ECDSAP256, &other.PublicKey, transportKey, wrappedKey)
	if err == nil {
		t.Fatal("UnwrapKey with a foreign public key succeeded")
	}
	if nodeB.HasKey("ca-1") {
		t.Fatal("the mismatched key was left on the token")
	}
	raw := openRawToken(t, tokenB)
	if err := raw.ctx.FindObjectsInit(raw.session, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte("ca-1"))}); err != nil {
		t.Fatal(err)
	}
	left, _, err := raw.ctx.FindObjects(raw.session, 10)
	_ = raw.ctx.FindObjectsFinal(raw.session)
	if err != nil || len(left) != 0 {
		t.Fatalf("objects with id ca-1 left on the token: %d (err %v)", len(left), err)
	}
}

func TestUnwrapKey_AlgorithmMismatchRejected(t *testing.T) {
	tokenA, tokenB := newTokenPair(t)
	nodeA := openHSM(t, tokenA, nil)
	nodeB := openHSM(t, tokenB, nil)
	transportKey, wrappedKey, public := wrapNewKey(t, nodeA, nodeB, "ca-1")

	_, err := nodeB.UnwrapKey("ca-1", hsm.ECDSAP384, public, transportKey, wrappedKey)
	if err == nil {
		t.Fatal("UnwrapKey with a P-256 key declared as P-384 succeeded")
	}
}

func TestUnwrapKey_TamperedWrappedKeyRejected(t *testing.T) {
	tokenA, tokenB := newTokenPair(t)
	nodeA := openHSM(t, tokenA, nil)
	nodeB := openHSM(t, tokenB, nil)
	transportKey, wrappedKey, public := wrapNewKey(t, nodeA, nodeB, "ca-1")

	wrappedKey[len(wrappedKey)/2] ^= 0x01
	if _, err := nodeB.UnwrapKey("ca-1", hsm.ECDSAP256, public, transportKey,
		wrappedKey); err == nil {
		t.Fatal("UnwrapKey of a modified wrapped key succeeded")
	}
	transportKey[len(transportKey)/2] ^= 0x01
	wrappedKey[len(wrappedKey)/2] ^= 0x01
	if _, err := nodeB.UnwrapKey("ca-1", hsm.ECDSAP256, public, transportKey,
		wrappedKey); err == nil {
		t.Fatal("UnwrapKey of a modified transport key succeeded")
	}
	if nodeB.HasKey("ca-1") {
		t.Fatal("a key was imported from modified input")
	}
}

func TestUnwrapKey_WrappedToOtherNodeRejected(t *testing.T) {
	tokenA, tokenB := newTokenPair(t)
	nodeA := openHSM(t, tokenA, nil)
	nodeB := openHSM(t, tokenB, nil)
	if _, err := nodeA.TransportPublicKey(); err != nil {
		t.Fatalf("TransportPublicKey on A: %v", err)
	}
	transportKey, wrappedKey, public := wrapNewKey(t, nodeA, nodeB, "ca-1")

	// A holds a transport key too, but the session key was wrapped to B's.
	if _, err := nodeA.UnwrapKey("ca-2", hsm.ECDSAP256, public, transportKey,
		wrappedKey); err == nil {
		t.Fatal("A unwrapped a key wrapped to B's transport key")
	}
}

func TestUnwrapKey_RepeatedImportReturnsExistingKey(t *testing.T) {
	tokenA, tokenB := newTokenPair(t)
	nodeA := openHSM(t, tokenA, nil)
	nodeB := openHSM(t, tokenB, nil)
	transportKey, wrappedKey, public := wrapNewKey(t, nodeA, nodeB, "ca-1")

	for range 2 {
		signer, err := nodeB.UnwrapKey("ca-1", hsm.ECDSAP256, public, transportKey, wrappedKey)
		if err != nil {
			t.Fatalf("UnwrapKey: %v", err)
		}
		signAndVerify(t, signer, public, crypto.SHA256)
	}

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, err = nodeB.UnwrapKey("ca-1", hsm.RSA2048, &other.PublicKey, transportKey, wrappedKey)
	if !errors.Is(err, hsm.ErrKeyExists) {
		t.Fatalf("UnwrapKey over a different key: error = %v, want ErrKeyExists", err)
	}
}

func TestWrapKey_UnknownKey(t *testing.T) {
	tokenA, tokenB := newTokenPair(t)
	nodeA := openHSM(t, tokenA, nil)
	nodeB := openHSM(t, tokenB, nil)
	recipient, err := nodeB.TransportPublicKey()
	if err != nil {
		t.Fatalf("TransportPublicKey: %v", err)
	}
	_, _, err = nodeA.WrapKey("missing", recipient)
	if !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("WrapKey error = %v, want ErrKeyNotFound", err)
	}
}

func TestWrapKey_TokenRefusesToWrapTransportKey(t *testing.T) {
	token := newToken(t, "transport-wrap")
	h := openHSM(t, token, nil)
	if _, err := h.TransportPublicKey(); err != nil {
		t.Fatalf("TransportPublicKey: %v", err)
	}
	if _, _, err := h.WrapKey(hsm.TransportKeyID, &rsa.PublicKey{}); err == nil {
		t.Fatal("WrapKey accepted the transport key id")
	}

	// Below the hsm package: the token itself must refuse.
	raw := openRawToken(t, token)
	private := raw.findObject(t, pkcs11.CKO_PRIVATE_KEY, hsm.TransportKeyID)
	wrapping, err := raw.ctx.GenerateKey(raw.session,
		[]*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)},
		[]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		})
	if err != nil {
		t.Fatalf("generate AES key: %v", err)
	}
	_, err = raw.ctx.WrapKey(raw.session,
		[]*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)},
		wrapping, private)
	if err != pkcs11.Error(pkcs11.CKR_KEY_UNEXTRACTABLE) {
		t.Fatalf("C_WrapKey of the transport private key: %v, want CKR_KEY_UNEXTRACTABLE", err)
	}
}

// wrapNewKey generates a P-256 key id on from and wraps it to to's transport key.
func wrapNewKey(t *testing.T, from, to *hsm.HSM, id string) (
	transportKey, wrappedKey []byte, public crypto.PublicKey) {
	t.Helper()
	signer, err := from.GenerateKey(id, hsm.ECDSAP256)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	recipient, err := to.TransportPublicKey()
	if err != nil {
		t.Fatalf("TransportPublicKey: %v", err)
	}
	transportKey, wrappedKey, err = from.WrapKey(id, recipient)
	if err != nil {
		t.Fatalf("WrapKey: %v", err)
	}
	return transportKey, wrappedKey, signer.Public()
}
