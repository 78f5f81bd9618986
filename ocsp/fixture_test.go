package ocsp

import (
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
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThalesIgnite/crypto11"
	"github.com/hashicorp/raft"

	"anchor/fsm"
	"anchor/hsm"
	softhsmtest "anchor/softhsm-test"
)

const (
	tokenLabel = "ocsp-test"
	chainID    = "acme/prod/web"
	rootID     = chainID + "/root"
	subID      = chainID + "/sub1"
	rootKeyID  = "root-key"
	subKeyID   = "sub-key"
)

// testPKI is a root and a SubCA with keys in a SoftHSM2 token, recorded in a
// real FSM, and the Responder on a loopback HTTP server in front of a mux.
type testPKI struct {
	t         *testing.T
	dir       string
	hsm       *crypto11.Context
	st        *fsm.FSM
	logger    *slog.Logger
	responder *Responder
	server    *httptest.Server
	index     uint64
	// applyTime, when set, is the proposer clock of the commands that
	// Apply commits, as the Designator's clock in the test.
	applyTime time.Time

	rootCert, subCert *x509.Certificate
	subSigner         crypto.Signer
	rootPEM, subPEM   string
}

func newTestPKI(t *testing.T) *testPKI {
	return newTestPKIWith(t, nil, Options{})
}

// newTestPKIWith builds the fixture with the given signers and options. Nil
// signers select the test token.
func newTestPKIWith(t *testing.T, signers Signers, opts Options) *testPKI {
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
	if signers == nil {
		signers = p
	}
	p.responder = NewResponder(st, signers, p.logger, opts)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "reached the mux", http.StatusTeapot)
	})
	p.server = httptest.NewServer(p.responder.Wrap(mux))
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

// mustApply applies a command as the next log entry and fails the test when
// it is rejected.
func (p *testPKI) mustApply(typ fsm.CommandType, payload any) {
	p.t.Helper()
	data, err := fsm.MustCommand(typ, payload).Encode()
	if err != nil {
		p.t.Fatal(err)
	}
	p.index++
	res, _ := p.st.Apply(&raft.Log{Index: p.index, Type: raft.LogCommand, Data: data}).(*fsm.Result)
	if res == nil || res.Err != nil {
		p.t.Fatalf("apply %s: %+v", typ, res)
	}
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
	p.rootCert = signCert(p.t, rootTmpl, rootTmpl, rootSigner.Public(), rootSigner)
	subTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test SubCA"},
		NotBefore: now, NotAfter: now.Add(47 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage:   x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		OCSPServer: []string{p.server.URL + "/ocsp"},
	}
	p.subCert = signCert(p.t, subTmpl, p.rootCert, p.subSigner.Public(), rootSigner)
	p.rootPEM = p.writePEM("root.pem", p.rootCert)
	p.subPEM = p.writePEM("sub.pem", p.subCert)

	p.mustApply(fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: "acme"})
	p.mustApply(fsm.CmdCreateRealm, fsm.CreateRealm{Org: "acme", Name: "prod"})
	p.mustApply(fsm.CmdCreateChain, fsm.CreateChain{
		Org: "acme", Realm: "prod", Name: "web",
		Root:  fsm.CA{Name: "root", KeyID: rootKeyID, CertDER: p.rootCert.Raw},
		SubCA: fsm.CA{Name: "sub1", KeyID: subKeyID, CertDER: p.subCert.Raw},
	})
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

func signCert(
	t *testing.T,
	tmpl, parent *x509.Certificate,
	pub crypto.PublicKey,
	signer crypto.Signer,
) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatalf("create certificate %s: %v", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func leafTemplate(name string, serial *big.Int) *x509.Certificate {
	now := time.Now().Add(-time.Minute)
	return &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: now, NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

func randomSerial() *big.Int {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return serial.Add(serial, big.NewInt(1))
}

// issueLeaf signs a leaf with the SubCA key, records it and writes its PEM
// file. It returns the certificate and the file path.
func (p *testPKI) issueLeaf(name string, serial *big.Int) (*x509.Certificate, string) {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	tmpl := leafTemplate(name, serial)
	tmpl.OCSPServer = []string{p.server.URL + "/ocsp"}
	cert := signCert(p.t, tmpl, p.subCert, key.Public(), p.subSigner)
	keyPair := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	p.mustApply(fsm.CmdIssueCredential, fsm.IssueCredential{
		ChainID: chainID, CAID: subID, Names: []string{name},
		KeyPairID: hex.EncodeToString(keyPair[:]), PublicKey: cert.RawSubjectPublicKeyInfo,
		DER: cert.Raw,
	})
	return cert, p.writePEM(name+".pem", cert)
}

func (p *testPKI) revoke(cert *x509.Certificate, reason int) {
	p.t.Helper()
	p.mustApply(fsm.CmdRevoke, fsm.Revoke{Serial: fsm.SerialKey(cert.SerialNumber), Reason: reason})
}

func (p *testPKI) writePEM(name string, cert *x509.Certificate) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// ocspURL is the POST URL of the responder.
func (p *testPKI) ocspURL() string { return p.server.URL + "/ocsp" }

// opensslOCSP runs "openssl ocsp" with the SubCA as issuer and the root as
// trust anchor, followed by args. It returns the combined output.
func (p *testPKI) opensslOCSP(args ...string) (string, error) {
	p.t.Helper()
	base := []string{"ocsp", "-CAfile", p.rootPEM, "-verify_other", p.subPEM}
	out, err := exec.Command("openssl", append(base, args...)...).CombinedOutput()
	return string(out), err
}

// requireOutput fails the test unless out contains every want.
func requireOutput(t *testing.T, out string, err error, wants ...string) {
	t.Helper()
	if err != nil {
		t.Errorf("openssl failed: %v\n%s", err, out)
	}
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("openssl output lacks %q:\n%s", want, out)
		}
	}
}

// requireResponderError fails the test unless openssl exited with an error
// after reporting the OCSP response status want.
func requireResponderError(t *testing.T, out string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(out, "Responder Error: "+want) {
		t.Errorf("openssl: got %v, want Responder Error: %s\n%s", err, want, out)
	}
}

// failingSigners is a Signers whose keys are all missing.
type failingSigners struct{}

func (failingSigners) Signer(keyID string) (crypto.Signer, error) {
	return nil, fmt.Errorf("key %s not found in the HSM", keyID)
}
