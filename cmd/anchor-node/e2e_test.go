package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"

	"anchor/internal/localcluster"
)

var nodeBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "anchor-node-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	nodeBinary = filepath.Join(dir, "anchor-node")
	build := exec.Command("go", "build", "-o", nodeBinary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build anchor-node:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// acmeUser is the lego account: a P-256 key and its registration.
type acmeUser struct {
	key crypto.Signer
	reg *acme.ExtendedAccount
}

func (u *acmeUser) GetEmail() string                       { return "" }
func (u *acmeUser) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *acmeUser) GetPrivateKey() crypto.Signer           { return u.key }

// startCluster runs three anchor-node processes and waits until every node
// holds the chain's keys.
func startCluster(t *testing.T, eabIdentifiers []string) (*localcluster.Cluster, *localcluster.Info) {
	t.Helper()
	layout, err := localcluster.Prepare(localcluster.Options{
		DataDir: t.TempDir(), Nodes: 3, EABIdentifiers: eabIdentifiers,
	})
	if err != nil {
		t.Fatalf("prepare cluster: %v", err)
	}
	c, err := localcluster.Start(layout, nodeBinary)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
		if t.Failed() {
			for i := range layout.Nodes {
				t.Log(c.LogTail(i, 4000))
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	info, err := c.WaitReady(ctx)
	if err != nil {
		t.Fatalf("cluster not ready: %v", err)
	}
	return c, info
}

func TestCluster_IssueVerifyRevokeAcrossNodes(t *testing.T) {
	_, info := startCluster(t, []string{"*.e2e.test"})
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// 1. Register with EAB and obtain a certificate from node 2.
	client, user := newLegoClient(t, info.Nodes[1].ACMEDirectory, info.ACMECACert)
	reg, err := client.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{
		TermsOfServiceAgreed: true, Kid: info.EAB.KeyID, HmacEncoded: info.EAB.HMACKey,
	})
	if err != nil {
		t.Fatalf("register with EAB: %v", err)
	}
	user.reg = reg
	res, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{
		Domains: []string{"www.e2e.test"}, Bundle: true, KeyType: certcrypto.EC256,
	})
	if err != nil {
		t.Fatalf("obtain certificate: %v", err)
	}
	leafPath, subCAPath := splitBundle(t, dir, res.Certificate)

	// 2. openssl verifies the chain up to the cluster's root.
	out, err := exec.Command("openssl", "verify", "-CAfile", info.RootCertPath,
		"-untrusted", subCAPath, leafPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}

	// 3. Every node returns good once the issuance has reached it. Followers
	// apply a commit at their next heartbeat, so node 2 is first to return it.
	waitOCSPStatus(t, info, subCAPath, leafPath, "good")

	// 4. Revoke through ACME; every node reports revoked within two seconds.
	keyCompromise := uint(1)
	if err := client.Certificate.RevokeWithReason(ctx, res.Certificate, &keyCompromise); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	waitOCSPStatus(t, info, subCAPath, leafPath, "revoked")
}

// waitOCSPStatus polls every node until its OCSP status is want, failing
// after two seconds.
func waitOCSPStatus(t *testing.T, info *localcluster.Info, subCAPath, leafPath, want string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for _, n := range info.Nodes {
		for {
			status := ocspStatus(t, n.OCSPURL, info.RootCertPath, subCAPath, leafPath)
			if status == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: OCSP status %q after two seconds, want %s", n.ID, status, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func newLegoClient(t *testing.T, directory, caFile string) (*lego.Client, *acmeUser) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newLegoClientWithKey(t, directory, caFile, key)
}

// newLegoClientWithKey returns a lego client for directory whose account key
// is key, trusting caFile for the ACME server's TLS certificate.
func newLegoClientWithKey(t *testing.T, directory, caFile string, key crypto.Signer) (*lego.Client, *acmeUser) {
	t.Helper()
	user := &acmeUser{key: key}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = directory
	cfg.HTTPClient = httpsClient(t, caFile)
	client, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatalf("new lego client for %s: %v", directory, err)
	}
	return client, user
}

// splitBundle writes the leaf and the SubCA of a PEM bundle to files.
func splitBundle(t *testing.T, dir string, bundle []byte) (leafPath, issuerPath string) {
	t.Helper()
	var blocks [][]byte
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, pem.EncodeToMemory(b))
	}
	if len(blocks) < 2 {
		t.Fatalf("certificate bundle has %d certificates, want leaf and SubCA", len(blocks))
	}
	leafPath = filepath.Join(dir, "leaf.pem")
	issuerPath = filepath.Join(dir, "subca.pem")
	if err := os.WriteFile(leafPath, blocks[0], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(issuerPath, blocks[1], 0o600); err != nil {
		t.Fatal(err)
	}
	return leafPath, issuerPath
}

// ocspStatus queries url with openssl ocsp, which also verifies the response
// signature against the root, and returns good, revoked or unknown.
func ocspStatus(t *testing.T, url, rootPath, issuerPath, leafPath string) string {
	t.Helper()
	out, err := exec.Command("openssl", "ocsp", "-issuer", issuerPath, "-cert", leafPath,
		"-url", url, "-CAfile", rootPath, "-timeout", "5").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl ocsp %s: %v\n%s", url, err, out)
	}
	text := string(out)
	if !strings.Contains(text, "Response verify OK") {
		t.Fatalf("openssl ocsp %s: response did not verify:\n%s", url, text)
	}
	for _, s := range []string{"good", "revoked", "unknown"} {
		if strings.Contains(text, leafPath+": "+s) {
			return s
		}
	}
	t.Fatalf("openssl ocsp %s: no status in output:\n%s", url, text)
	return ""
}
