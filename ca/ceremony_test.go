package ca_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"anchor/ca"
	"anchor/fsm"
	"anchor/internal/testenv"
)

// exampleCeremony is the ceremony specification shipped for operators.
const exampleCeremony = "../docs/examples/ceremony.json"

func TestLoadCeremonySpec_Example(t *testing.T) {
	spec, err := ca.LoadCeremonySpec(exampleCeremony)
	if err != nil {
		t.Fatalf("LoadCeremonySpec: %v", err)
	}
	if spec.Org != "example" || spec.Realm != "production" || spec.Chain != "web" {
		t.Errorf("org/realm/chain = %s/%s/%s, want example/production/web",
			spec.Org, spec.Realm, spec.Chain)
	}
	if len(spec.SubCAs) != 2 || spec.SubCAs[0].Name != "servers" {
		t.Errorf("subcas = %+v, want servers first of two", spec.SubCAs)
	}
}

func TestLoadCeremonySpec_RejectsInvalid(t *testing.T) {
	valid, err := os.ReadFile(exampleCeremony)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		replace [2]string // old, new in the example file
		want    string    // in the error
	}{
		{"unknown key", [2]string{`"realm"`, `"relm"`}, "relm"},
		{"bad algorithm", [2]string{`"ecdsa-p384"`, `"ecdsa-p521"`}, "root.algorithm"},
		{"zero validity", [2]string{`"validity_days": 7300`, `"validity_days": 0`},
			"root.validity_days"},
		{"bad name", [2]string{`"name": "servers"`, `"name": "Servers"`}, "subcas[0].name"},
		{"duplicate name", [2]string{`"name": "clients"`, `"name": "servers"`}, "twice"},
		{"leaf longer than SubCA", [2]string{`"leaf_validity_days": 30`,
			`"leaf_validity_days": 5000`}, "leaf_validity_days"},
		{"bad key type", [2]string{`"rsa-2048"]`, `"rsa-1024"]`}, "key_types"},
		{"long country", [2]string{`"country": "DE"`, `"country": "DEU"`}, "country"},
		{"trailing data", [2]string{"\n}\n", "\n}\n{}"}, "after the JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed := strings.Replace(string(valid), tt.replace[0], tt.replace[1], 1)
			if changed == string(valid) {
				t.Fatalf("%q not found in the example", tt.replace[0])
			}
			path := filepath.Join(t.TempDir(), "spec.json")
			if err := os.WriteFile(path, []byte(changed), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := ca.LoadCeremonySpec(path)
			if err == nil {
				t.Fatal("LoadCeremonySpec succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// TestRunCeremony_ExampleSpec runs the shipped ceremony on a three-node cluster and
// checks the chain with openssl and on every node.
func TestRunCeremony_ExampleSpec(t *testing.T) {
	spec, err := ca.LoadCeremonySpec(exampleCeremony)
	if err != nil {
		t.Fatalf("LoadCeremonySpec: %v", err)
	}
	env := testenv.New(t, 3, testenv.Options{})
	m := env.Members[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	result, err := ca.RunCeremony(ctx, m.Cluster, m.HSM, m.Cluster.ID(), env.URLs, spec)
	if err != nil {
		t.Fatalf("RunCeremony: %v", err)
	}
	if result.ChainID != "example/production/web" || len(result.SubCAs) != 2 {
		t.Fatalf("result = %s with %d SubCAs", result.ChainID, len(result.SubCAs))
	}

	dir := t.TempDir()
	rootFile := writeCertPEM(t, dir, "root.pem", result.Root.CertDER)
	if got := opensslFingerprint(t, rootFile); got != result.Root.Fingerprint {
		t.Errorf("root fingerprint %s, openssl prints %s", result.Root.Fingerprint, got)
	}
	root, err := x509.ParseCertificate(result.Root.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	if root.Subject.CommonName != spec.Root.Subject.CommonName ||
		!slices.Equal(root.Subject.Country, []string{"DE"}) {
		t.Errorf("root subject = %v, want the spec's", root.Subject)
	}
	for _, sub := range result.SubCAs {
		subFile := writeCertPEM(t, dir, filepath.Base(sub.ID)+".pem", sub.CertDER)
		out, err := exec.Command("openssl", "verify", "-x509_strict", "-CAfile", rootFile,
			subFile).CombinedOutput()
		if err != nil {
			t.Errorf("openssl verify %s: %v: %s", sub.ID, err, out)
		}
	}

	checkCeremonyState(t, env, result)
	env.WaitKeysEverywhere(t)
	last := env.Members[len(env.Members)-1]
	if _, err := last.HSM.Signer(result.SubCAs[1].KeyID); err != nil {
		t.Fatalf("member %s cannot sign with the clients SubCA key: %v", last.Cluster.ID(), err)
	}
}

// checkCeremonyState waits until the last member has applied the whole ceremony and
// compares its state with the result.
func checkCeremonyState(t *testing.T, env *testenv.Env, result *ca.CeremonyResult) {
	t.Helper()
	m := env.Members[len(env.Members)-1]
	var chain *fsm.Chain
	var root *fsm.CA
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := m.State().View(func(tx *fsm.Tx) error {
			var err error
			if chain, err = tx.Chain(result.ChainID); err != nil {
				return err
			}
			root, err = tx.CA(chain.RootCAID)
			return err
		})
		if err == nil && len(chain.SubCAIDs) == len(result.SubCAs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member %s has not applied the ceremony: %v, chain %+v", m.Cluster.ID(),
				err, chain)
		}
		time.Sleep(25 * time.Millisecond)
	}

	if chain.DefaultSubCAID != result.SubCAs[0].ID {
		t.Errorf("default SubCA = %s, want %s", chain.DefaultSubCAID, result.SubCAs[0].ID)
	}
	if ca.Fingerprint(root.CertDER) != result.Root.Fingerprint {
		t.Error("replicated root certificate differs from the ceremony's")
	}
}

func writeCertPEM(t *testing.T, dir, name string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// opensslFingerprint returns the SHA-256 fingerprint openssl prints for a PEM file.
func opensslFingerprint(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("openssl", "x509", "-noout", "-fingerprint", "-sha256",
		"-in", path).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509 -fingerprint: %v: %s", err, out)
	}
	_, fingerprint, ok := strings.Cut(strings.TrimSpace(string(out)), "=")
	if !ok {
		t.Fatalf("unexpected openssl output %q", out)
	}
	return fingerprint
}
