package hsm_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"anchor/hsm"
)

// TestSigner_OpenSSLVerifies checks signatures with openssl as an independent verifier.
func TestSigner_OpenSSLVerifies(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	token := newToken(t, "openssl")
	h := openHSM(t, token, nil)

	tests := []struct {
		name     string
		alg      hsm.Algorithm
		opts     crypto.SignerOpts
		openssl  []string
		hashFlag string
	}{
		{"p384", hsm.ECDSAP384, crypto.SHA384, nil, "-sha384"},
		{"rsa-pkcs1", hsm.RSA2048, crypto.SHA256, nil, "-sha256"},
		{"rsa-pss", hsm.RSA2048,
			&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256},
			[]string{"-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"},
			"-sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signer, err := h.GenerateKey("ca-"+tt.name, tt.alg)
			if err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
			message := []byte("anchor openssl check")
			signature, err := signer.Sign(nil, digestFor(t, message, tt.opts), tt.opts)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}

			dir := t.TempDir()
			files := writeVerifyInputs(t, dir, signer.Public(), message, signature)
			args := append([]string{"dgst", tt.hashFlag, "-verify", files[0],
				"-signature", files[1]}, tt.openssl...)
			out, err := exec.Command("openssl", append(args, files[2])...).CombinedOutput()
			if err != nil {
				t.Fatalf("openssl dgst -verify: %v: %s", err, out)
			}
		})
	}
}

// writeVerifyInputs writes the public key (PEM), signature and message into dir and
// returns their paths in that order.
func writeVerifyInputs(t *testing.T, dir string, pub crypto.PublicKey, message,
	signature []byte) [3]string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatalf("MarshalPKIXPublicKey: %v", err)
	}
	paths := [3]string{
		filepath.Join(dir, "public.pem"),
		filepath.Join(dir, "signature.bin"),
		filepath.Join(dir, "message.txt"),
	}
	contents := [3][]byte{
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		signature,
		message,
	}
	for i, path := range paths {
		if err := os.WriteFile(path, contents[i], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}
