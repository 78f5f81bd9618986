package crl

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThalesIgnite/crypto11"
	"github.com/hashicorp/raft"

	"anchor/fsm"
	"anchor/hsm"
	softhsmtest "anchor/softhsm-test"
)

const (
	tokenLabel = "crl-test"
	chainID    = "acme/prod/web"
	rootID     = chainID + "/root"
	subID      = chainID + "/sub1"
	rootKeyID  = "root-key"
	subKeyID   = "sub-key"
)

// testPKI is a root and a SubCA with keys in a SoftHSM2 token, recorded in a
// real FSM, and an HTTP server with the CRL handler.
type testPKI struct {
	t      *testing.T
	dir    string
	hsm    *crypto11.Context
	st     *fsm.FSM
	logger *slog.Logger
	server *httptest.Server

	mu    sync.Mutex // serializes applies: the test and the publisher both apply
	index uint64

	rootCert, subCert *x509.Certificate
	subSigner         crypto.Signer
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{t: t, dir: t.TempDir()}
	p.logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	p.hsm = newTestToken(t, p.dir)

	st, err := fsm.Open(filepath.Join(p.dir, "state.db"), p.logger)
	if err != nil {
		t.Fatalf("open fsm: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	p.st = st
	p.server = httptest.NewServer(NewHandler(st, p.logger, nil))
	t.Cleanup(p.server.Close)

	p.createChain()
	return p
}

// newTestToken initialises a SoftHSM2 token in dir and opens it with
// crypto11, which keeps these tests independent of the hsm package's key
// handling.
func newTestToken(t *testing.T, dir string) *crypto11.Context {
	t.Helper()
	token, err := softhsmtest.NewToken(filepath.Join(dir, "token"), tokenLabel)
	if err != nil {
		t.Fatalf("create SoftHSM2 token: %v", err)
	}
	t.Setenv(softhsmtest.ConfigEnv, token.ConfigPath)
	ctx, err := crypto11.Configure(&crypto11.Config{
		Path: token.ModulePath, TokenLabel: token.Label, Pin: token.PIN,
	})
	if err != nil {
		t.Fatalf("open SoftHSM2 token: %v", err)
	}
	t.Cleanup(func() { ctx.Close() })
	return ctx
}

// The node passes its HSM as Signers.
var _ Signers = (*hsm.HSM)(nil)

// Signer implements Signers with the test token.
func (p *testPKI) Signer(keyID string) (crypto.Signer, error) {
	s, err := p.hsm.FindKeyPair(nil, []byte(keyID))
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("key %s not found", keyID)
	}
	return s, nil
}

// Apply implements Applier by applying the command as the next log entry.
func (p *testPKI) Apply(_ context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	data, err := cmd.Encode()
	if err != nil {
		return nil, err
	}
	// Entries must reach the FSM in index order, or it skips the lower one
	// as already applied, so the lock covers the apply.
	p.mu.Lock()
	defer p.mu.Unlock()
	p.index++
	l := &raft.Log{Index: p.index, Type: raft.LogCommand, Data: data}
	res, _ := p.st.Apply(l).(*fsm.Result)
	if res == nil {
		return nil, fmt.Errorf("log entry %d was not applied", l.Index)
	}
	return res, nil
}

// mustApply applies a command built from payload and fails the test when it
// is rejected.
func (p *testPKI) mustApply(typ fsm.CommandType, payload any) {
	p.t.Helper()
	res, err := p.Apply(context.Background(), fsm.MustCommand(typ, payload))
	if err != nil {
		p.t.Fatalf("apply %s: %v", typ, err)
	}
	if res.Err != nil {
		p.t.Fatalf("apply %s: rejected: %v", typ, res.Err)
	}
}

func (p *testPKI) generateKey(label string) crypto.Signer {
	p.t.Helper()
	id := make([]byte, 16)
	rand.Read(id)
	s, err := p.hsm.GenerateECDSAKeyPairWithLabel(id, []byte(label), elliptic.P256())
	if err != nil {
		p.t.Fatalf("generate key %s: %v", label, err)
	}
	return s
}

func (p *testPKI) createChain() {
	p.t.Helper()
	rootSigner := p.generateKey(rootKeyID)
	p.subSigner = p.generateKey(subKeyID)
	now := time.Now().Add(-time.Hour)

	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test AnchorCA"},
		NotBefore: now, NotAfter: now.Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	p.rootCert = p.sign(rootTmpl, rootTmpl, rootSigner.Public(), rootSigner)
	subTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test SubCA"},
		NotBefore: now, NotAfter: now.Add(47 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		CRLDistributionPoints: []string{URL(p.server.URL, rootID)},
	}
	p.subCert = p.sign(subTmpl, p.rootCert, p.subSigner.Public(), rootSigner)

	p.mustApply(fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: "acme"})
	p.mustApply(fsm.CmdCreateRealm, fsm.CreateRealm{Org: "acme", Name: "prod"})
	p.mustApply(fsm.CmdCreateChain, fsm.CreateChain{
		Org: "acme", Realm: "prod", Name: "web",
		Root: fsm.CA{Name: "root", KeyID: rootKeyID, CertDER: p.rootCert.Raw,
			Policy: fsm.Policy{CRLURLs: []string{URL(p.server.URL, rootID)}}},
		SubCA: fsm.CA{Name: "sub1", KeyID: subKeyID, CertDER: p.subCert.Raw,
			Policy: fsm.Policy{CRLURLs: []string{URL(p.server.URL, subID)}}},
	})
}

func (p *testPKI) sign(
	tmpl, parent *x509.Certificate,
	pub crypto.PublicKey,
	signer crypto.Signer,
) *x509.Certificate {
	p.t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		p.t.Fatalf("create certificate %s: %v", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		p.t.Fatal(err)
	}
	return cert
}

// issueLeaf signs a leaf whose CRL distribution point is the SubCA's full
// CRL, and records it.
func (p *testPKI) issueLeaf(name string) *x509.Certificate {
	p.t.Helper()
	return p.issueLeafWith(name, randomSerial(), func(*x509.Certificate) {})
}

// issueShardedLeaf signs a leaf as the ca package does with CRL shards: its
// CRL distribution point names its shard's CRL, and its freshest CRL
// extension that shard's delta CRL.
func (p *testPKI) issueShardedLeaf(name string, serial *big.Int) *x509.Certificate {
	p.t.Helper()
	return p.issueLeafWith(name, serial, func(tmpl *x509.Certificate) {
		dp := ShardURLs(p.ca(subID).Policy.CRLURLs, ShardOf(tmpl.SerialNumber, fsm.DefaultCRLShards))
		freshest, err := FreshestCRLExtension(DeltaURLs(dp))
		if err != nil {
			p.t.Fatal(err)
		}
		tmpl.CRLDistributionPoints = dp
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, freshest)
	})
}

func randomSerial() *big.Int {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return serial.Add(serial, big.NewInt(1))
}

// issueLeafWith signs a leaf with the SubCA key after edit changed its
// template, and records it.
func (p *testPKI) issueLeafWith(
	name string,
	serial *big.Int,
	edit func(*x509.Certificate),
) *x509.Certificate {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	now := time.Now().Add(-time.Minute)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: now, NotAfter: now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		CRLDistributionPoints: []string{URL(p.server.URL, subID)},
	}
	edit(tmpl)
	cert := p.sign(tmpl, p.subCert, key.Public(), p.subSigner)
	keyPair := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	p.mustApply(fsm.CmdIssueCredential, fsm.IssueCredential{
		ChainID: chainID, CAID: subID, Names: []string{name},
		KeyPairID: hex.EncodeToString(keyPair[:]), PublicKey: cert.RawSubjectPublicKeyInfo,
		DER: cert.Raw,
	})
	return cert
}

func (p *testPKI) revoke(cert *x509.Certificate, reason int) {
	p.t.Helper()
	p.mustApply(fsm.CmdRevoke, fsm.Revoke{Serial: fsm.SerialKey(cert.SerialNumber), Reason: reason})
}

// storedCRL returns the replicated full CRL of a CA, or nil when none
// exists.
func (p *testPKI) storedCRL(caID string) *fsm.CRL {
	p.t.Helper()
	return p.storedScope(fsm.FullScope(caID), false)
}

// storedScope returns the replicated complete or delta CRL of a scope, or
// nil when none exists.
func (p *testPKI) storedScope(scope fsm.CRLScope, delta bool) *fsm.CRL {
	p.t.Helper()
	var crl *fsm.CRL
	err := p.st.View(func(tx *fsm.Tx) error {
		var err error
		crl, err = tx.CRL(scope, delta)
		return err
	})
	if fsm.IsNotFound(err) {
		return nil
	}
	if err != nil {
		p.t.Fatalf("read CRL of %s: %v", scope, err)
	}
	return crl
}

// waitCRL polls until the stored full CRL of caID satisfies cond.
func (p *testPKI) waitCRL(caID string, what string, cond func(*fsm.CRL) bool) *fsm.CRL {
	p.t.Helper()
	return p.waitScope(fsm.FullScope(caID), false, what, cond)
}

// waitScope polls until the stored complete or delta CRL of a scope
// satisfies cond.
func (p *testPKI) waitScope(
	scope fsm.CRLScope,
	delta bool,
	what string,
	cond func(*fsm.CRL) bool,
) *fsm.CRL {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		crl := p.storedScope(scope, delta)
		if crl != nil && cond(crl) {
			return crl
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for the CRL of %s (delta %v): %s", scope, delta, what)
		}
		select {
		case <-p.st.Watch():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startPublisher runs a Publisher that is always leader until the test ends.
func (p *testPKI) startPublisher(opts PublisherOptions) *Publisher {
	p.t.Helper()
	if opts.IsLeader == nil {
		opts.IsLeader = func() bool { return true }
	}
	pub := NewPublisher(p.st, p, p, p.logger, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		pub.Run(ctx)
	}()
	p.t.Cleanup(func() {
		cancel()
		<-done
	})
	return pub
}

// writePEM writes certificates or a CRL as PEM and returns the path.
func (p *testPKI) writePEM(name, blockType string, ders ...[]byte) string {
	p.t.Helper()
	var data []byte
	for _, der := range ders {
		data = append(data, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})...)
	}
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// openssl runs openssl with args and returns its combined output and error.
func openssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}
