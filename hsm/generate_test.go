package hsm_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"testing"

	"anchor/hsm"

	"github.com/miekg/pkcs11"
)

func TestGenerateKey_SignsWithEveryAlgorithm(t *testing.T) {
	token := newToken(t, "generate")
	h := openHSM(t, token, nil)
	pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}

	tests := []struct {
		alg  hsm.Algorithm
		opts []crypto.SignerOpts
	}{
		{hsm.ECDSAP256, []crypto.SignerOpts{crypto.SHA256}},
		{hsm.ECDSAP384, []crypto.SignerOpts{crypto.SHA384}},
		{hsm.RSA2048, []crypto.SignerOpts{crypto.SHA256, pss}},
		{hsm.RSA3072, []crypto.SignerOpts{crypto.SHA256, pss}},
		{hsm.RSA4096, []crypto.SignerOpts{crypto.SHA384, pss}},
		{hsm.Ed25519, []crypto.SignerOpts{crypto.Hash(0), &ed25519.Options{}}},
	}
	for _, tt := range tests {
		t.Run(string(tt.alg), func(t *testing.T) {
			id := "ca-" + string(tt.alg)
			signer, err := h.GenerateKey(id, tt.alg)
			if err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
			checkKeyType(t, signer.Public(), tt.alg)
			for _, opts := range tt.opts {
				signAndVerify(t, signer, signer.Public(), opts)
			}

			found, err := h.Signer(id)
			if err != nil {
				t.Fatalf("Signer: %v", err)
			}
			if !found.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(signer.Public()) {
				t.Fatal("Signer returned a different public key than GenerateKey")
			}
			if !h.HasKey(id) {
				t.Fatal("HasKey = false after GenerateKey")
			}
		})
	}
}

func checkKeyType(t *testing.T, pub crypto.PublicKey, alg hsm.Algorithm) {
	t.Helper()
	switch alg {
	case hsm.Ed25519:
		key, ok := pub.(ed25519.PublicKey)
		if !ok || len(key) != ed25519.PublicKeySize {
			t.Fatalf("public key %T is not Ed25519", pub)
		}
	case hsm.ECDSAP256, hsm.ECDSAP384:
		want := map[hsm.Algorithm]elliptic.Curve{
			hsm.ECDSAP256: elliptic.P256(), hsm.ECDSAP384: elliptic.P384()}[alg]
		key, ok := pub.(*ecdsa.PublicKey)
		if !ok || key.Curve != want {
			t.Fatalf("public key %T is not ECDSA on %s", pub, want.Params().Name)
		}
	default:
		want := map[hsm.Algorithm]int{
			hsm.RSA2048: 2048, hsm.RSA3072: 3072, hsm.RSA4096: 4096}[alg]
		key, ok := pub.(*rsa.PublicKey)
		if !ok || key.N.BitLen() != want {
			t.Fatalf("public key %T is not RSA-%d", pub, want)
		}
	}
}

func TestGenerateKey_PrivateKeySensitiveAndWrapOnly(t *testing.T) {
	token := newToken(t, "attributes")
	h := openHSM(t, token, nil)
	if _, err := h.GenerateKey("ca-1", hsm.ECDSAP256); err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	raw := openRawToken(t, token)
	private := raw.findObject(t, pkcs11.CKO_PRIVATE_KEY, "ca-1")

	if !raw.boolAttribute(t, private, pkcs11.CKA_SENSITIVE) {
		t.Error("CKA_SENSITIVE = false, want true")
	}
	if !raw.boolAttribute(t, private, pkcs11.CKA_EXTRACTABLE) {
		t.Error("CKA_EXTRACTABLE = false, want true (wrap only)")
	}
	if !raw.boolAttribute(t, private, pkcs11.CKA_TOKEN) {
		t.Error("CKA_TOKEN = false, want true")
	}
	if raw.boolAttribute(t, private, pkcs11.CKA_DECRYPT) {
		t.Error("CKA_DECRYPT = true, want false")
	}

	_, err := raw.ctx.GetAttributeValue(raw.session, private,
		[]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err == nil {
		t.Fatal("reading CKA_VALUE of the CA private key succeeded")
	}
	if err != pkcs11.Error(pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
		t.Fatalf("reading CKA_VALUE: %v, want CKR_ATTRIBUTE_SENSITIVE", err)
	}
}

func TestGenerateKey_DuplicateID(t *testing.T) {
	token := newToken(t, "duplicate")
	h := openHSM(t, token, nil)
	if _, err := h.GenerateKey("ca-1", hsm.ECDSAP256); err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	_, err := h.GenerateKey("ca-1", hsm.ECDSAP384)
	if !errors.Is(err, hsm.ErrKeyExists) {
		t.Fatalf("second GenerateKey error = %v, want ErrKeyExists", err)
	}
}

func TestGenerateKey_ReservedID(t *testing.T) {
	token := newToken(t, "reserved")
	h := openHSM(t, token, nil)
	if _, err := h.GenerateKey(hsm.TransportKeyID, hsm.ECDSAP256); err == nil {
		t.Fatal("GenerateKey with the transport key id succeeded")
	}
	if _, err := h.GenerateKey("ca-1", hsm.Algorithm("ed448")); err == nil {
		t.Fatal("GenerateKey with an unsupported algorithm succeeded")
	}
}

func TestSigner_UnknownKey(t *testing.T) {
	token := newToken(t, "unknown")
	h := openHSM(t, token, nil)
	_, err := h.Signer("missing")
	if !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("Signer error = %v, want ErrKeyNotFound", err)
	}
	if h.HasKey("missing") {
		t.Fatal("HasKey = true for a missing key")
	}
}

func TestSigner_AfterClose(t *testing.T) {
	token := newToken(t, "closed")
	h := openHSM(t, token, nil)
	signer, err := h.GenerateKey("ca-1", hsm.ECDSAP256)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err = signer.Sign(nil, make([]byte, 32), crypto.SHA256)
	if !errors.Is(err, hsm.ErrClosed) {
		t.Fatalf("Sign after Close error = %v, want ErrClosed", err)
	}
}

func TestTransportPublicKey_PrivateHalfNotExtractable(t *testing.T) {
	token := newToken(t, "transport")
	h := openHSM(t, token, nil)
	first, err := h.TransportPublicKey()
	if err != nil {
		t.Fatalf("TransportPublicKey: %v", err)
	}
	if first.N.BitLen() != 3072 {
		t.Fatalf("transport key has %d bits, want 3072", first.N.BitLen())
	}
	second, err := h.TransportPublicKey()
	if err != nil {
		t.Fatalf("second TransportPublicKey: %v", err)
	}
	if !first.Equal(second) {
		t.Fatal("second TransportPublicKey returned a different key")
	}

	raw := openRawToken(t, token)
	private := raw.findObject(t, pkcs11.CKO_PRIVATE_KEY, hsm.TransportKeyID)
	if raw.boolAttribute(t, private, pkcs11.CKA_EXTRACTABLE) {
		t.Error("transport private key CKA_EXTRACTABLE = true, want false")
	}
	if !raw.boolAttribute(t, private, pkcs11.CKA_SENSITIVE) {
		t.Error("transport private key CKA_SENSITIVE = false, want true")
	}
	if !raw.boolAttribute(t, private, pkcs11.CKA_UNWRAP) {
		t.Error("transport private key CKA_UNWRAP = false, want true")
	}
	if raw.boolAttribute(t, private, pkcs11.CKA_DECRYPT) {
		t.Error("transport private key CKA_DECRYPT = true, want false")
	}
	public := raw.findObject(t, pkcs11.CKO_PUBLIC_KEY, hsm.TransportKeyID)
	if !raw.boolAttribute(t, public, pkcs11.CKA_WRAP) {
		t.Error("transport public key CKA_WRAP = false, want true")
	}
}

func TestTransportPublicKey_SurvivesReopen(t *testing.T) {
	token := newToken(t, "transport-reopen")
	h := openHSM(t, token, nil)
	first, err := h.TransportPublicKey()
	if err != nil {
		t.Fatalf("TransportPublicKey: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	reopened := openHSM(t, token, nil)
	second, err := reopened.TransportPublicKey()
	if err != nil {
		t.Fatalf("TransportPublicKey after reopen: %v", err)
	}
	if !first.Equal(second) {
		t.Fatal("transport key changed across Open")
	}
}

func TestDestroyKey_RemovesKeyAndCachedSigner(t *testing.T) {
	token := newToken(t, "destroy")
	h := openHSM(t, token, nil)
	for _, id := range []string{"ocsp-1", "ca-1"} {
		if _, err := h.GenerateKey(id, hsm.ECDSAP256); err != nil {
			t.Fatalf("GenerateKey %s: %v", id, err)
		}
	}
	if _, err := h.Signer("ocsp-1"); err != nil {
		t.Fatal(err)
	}
	if err := h.DestroyKey("ocsp-1"); err != nil {
		t.Fatalf("DestroyKey: %v", err)
	}
	if h.HasKey("ocsp-1") {
		t.Error("HasKey = true after DestroyKey")
	}
	if _, err := h.Signer("ocsp-1"); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Errorf("Signer after DestroyKey: error %v, want ErrKeyNotFound", err)
	}
	if !h.HasKey("ca-1") {
		t.Error("DestroyKey removed another key")
	}
	if err := h.DestroyKey("ocsp-1"); err != nil {
		t.Errorf("DestroyKey of a key already gone: %v", err)
	}
	if err := h.DestroyKey(hsm.TransportKeyID); err == nil {
		t.Error("DestroyKey accepted the transport key's id")
	}
}
