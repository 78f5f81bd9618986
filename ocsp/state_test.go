package ocsp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	xocsp "golang.org/x/crypto/ocsp"

	"anchor/fsm"
)

// Tests of how cached responses and the issuer index follow changes of the
// replicated state.

// applyTo applies a command to st as log entry *index + 1.
func applyTo(t *testing.T, st *fsm.FSM, index *uint64, typ fsm.CommandType, payload any) {
	t.Helper()
	data, err := fsm.MustCommand(typ, payload).Encode()
	if err != nil {
		t.Fatal(err)
	}
	*index++
	res, _ := st.Apply(&raft.Log{Index: *index, Type: raft.LogCommand, Data: data}).(*fsm.Result)
	if res == nil || res.Err != nil {
		t.Fatalf("apply %s: %+v", typ, res)
	}
}

// issueLeafUnder signs a leaf with a CA's key and records it in st.
func issueLeafUnder(
	t *testing.T,
	st *fsm.FSM,
	index *uint64,
	caID string,
	caCert *x509.Certificate,
	caSigner crypto.Signer,
	serial *big.Int,
) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := signCert(t, leafTemplate("leaf.example.net", serial), caCert, key.Public(), caSigner)
	keyPair := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	applyTo(t, st, index, fsm.CmdIssueCredential, fsm.IssueCredential{
		ChainID: chainID, CAID: caID, Names: []string{"leaf.example.net"},
		KeyPairID: hex.EncodeToString(keyPair[:]), PublicKey: cert.RawSubjectPublicKeyInfo,
		DER: cert.Raw,
	})
	return cert
}

// caTemplate is a CA certificate template valid around now.
func caTemplate(name string, subCA bool) *x509.Certificate {
	now := time.Now().Add(-time.Hour)
	return &x509.Certificate{
		SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: name},
		NotBefore: now, NotAfter: now.Add(47 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: subCA,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

// addSubCA creates a SubCA of the fixture's root, with its key in the test
// token under keyLabel, and commits it.
func (p *testPKI) addSubCA(name, keyLabel string) (*x509.Certificate, crypto.Signer) {
	p.t.Helper()
	rootSigner, err := p.Signer(rootKeyID)
	if err != nil {
		p.t.Fatal(err)
	}
	signer := p.generateKey(keyLabel)
	cert := signCert(p.t, caTemplate("Test SubCA "+name, true), p.rootCert, signer.Public(), rootSigner)
	p.mustApply(fsm.CmdCreateSubCA, fsm.CreateSubCA{SubCA: fsm.CA{
		ChainID: chainID, Name: name, KeyID: keyLabel, CertDER: cert.Raw,
	}})
	return cert, signer
}

// postFor posts the SHA-1 request for cert under issuer and returns the
// response body.
func (p *testPKI) postFor(t *testing.T, cert, issuer *x509.Certificate) []byte {
	t.Helper()
	der, err := xocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(p.ocspURL(), "application/ocsp-request", bytes.NewReader(der))
	if err != nil {
		t.Fatal(err)
	}
	return readAll(t, resp)
}

// requireStatus parses body as the response for cert under issuer and
// checks its status.
func requireStatus(t *testing.T, body []byte, cert, issuer *x509.Certificate, want int) *xocsp.Response {
	t.Helper()
	resp, err := xocsp.ParseResponseForCert(body, cert, issuer)
	if err != nil {
		t.Fatalf("parse response for serial %x: %v", cert.SerialNumber, err)
	}
	if resp.Status != want {
		t.Errorf("serial %x: status %d, want %d", cert.SerialNumber, resp.Status, want)
	}
	return resp
}

func TestResponder_CachedResponseServedWithoutReadingState(t *testing.T) {
	p := newTestPKI(t)
	_, leaf := p.issueLeaf("unread.example.net", randomSerial())
	der := p.opensslRequest(leaf, "-no_nonce")
	first, _ := p.post(t, der)

	// Every read of the state fails from now on, and no batch follows.
	if err := p.st.Close(); err != nil {
		t.Fatal(err)
	}
	second, _ := p.post(t, der)
	if !bytes.Equal(first, second) {
		t.Error("second response differs from the cached one")
	}
}

func TestResponder_PresignedResponseReplacedAfterRevocation(t *testing.T) {
	p, _ := newCountingPKI(t, Options{})
	cert, leaf := p.issueLeaf("presigned-revoke.example.net", randomSerial())
	var position string
	if n := p.responder.presignRound(&position); n != 1 {
		t.Fatalf("pre-signing round stored %d responses, want 1", n)
	}
	target := "/ocsp/" + base64.StdEncoding.EncodeToString(p.opensslRequest(leaf, "-no_nonce"))
	requireStatus(t, readAll(t, p.getRaw(target, nil)), cert, p.subCert, xocsp.Good)

	p.revoke(cert, 1)
	resp := requireStatus(t, readAll(t, p.getRaw(target, nil)), cert, p.subCert, xocsp.Revoked)
	if resp.RevocationReason != 1 {
		t.Errorf("reason %d, want keyCompromise (1)", resp.RevocationReason)
	}
}

func TestResponder_SubCARevocationAfterCache(t *testing.T) {
	p := newTestPKI(t)
	requireStatus(t, p.postFor(t, p.subCert, p.rootCert), p.subCert, p.rootCert, xocsp.Good)
	p.mustApply(fsm.CmdRevokeSubCA, fsm.RevokeSubCA{CAID: subID, Reason: 2})
	resp := requireStatus(t, p.postFor(t, p.subCert, p.rootCert), p.subCert, p.rootCert,
		xocsp.Revoked)
	if resp.RevocationReason != 2 {
		t.Errorf("reason %d, want cACompromise (2)", resp.RevocationReason)
	}
}

func TestResponder_SubCAAddedAfterStartServed(t *testing.T) {
	p := newTestPKI(t)
	first, _ := p.issueLeaf("first.example.net", randomSerial())
	requireStatus(t, p.postFor(t, first, p.subCert), first, p.subCert, xocsp.Good)

	sub2, sub2Signer := p.addSubCA("sub2", "sub2-key")
	leaf := issueLeafUnder(t, p.st, &p.index, chainID+"/sub2", sub2, sub2Signer, randomSerial())
	requireStatus(t, p.postFor(t, leaf, sub2), leaf, sub2, xocsp.Good)
}

func TestResponder_SubCAAddedAfterStartGoodUnderRoot(t *testing.T) {
	p := newTestPKI(t)
	requireStatus(t, p.postFor(t, p.subCert, p.rootCert), p.subCert, p.rootCert, xocsp.Good)

	sub2, _ := p.addSubCA("sub2", "sub2-key")
	requireStatus(t, p.postFor(t, sub2, p.rootCert), sub2, p.rootCert, xocsp.Good)
}

func TestResponder_ResponderPublishedAfterStart(t *testing.T) {
	p := newTestPKI(t)
	cert, leaf := p.issueLeaf("designated-later.example.net", randomSerial())
	before, err := xocsp.ParseResponseForCert(p.fetchResponse(t, leaf), cert, p.subCert)
	if err != nil {
		t.Fatal(err)
	}
	if before.Certificate != nil {
		t.Fatal("response before designation carries a responder certificate")
	}

	p.designate(DesignatorOptions{}, time.Now())
	designated, err := p.responders(subID)[0].Certificate()
	if err != nil {
		t.Fatal(err)
	}
	after, err := xocsp.ParseResponseForCert(p.fetchResponse(t, leaf), cert, p.subCert)
	if err != nil {
		t.Fatal(err)
	}
	if after.Certificate == nil || !bytes.Equal(after.Certificate.Raw, designated.Raw) {
		t.Error("nonce response after designation is not signed by the new responder certificate")
	}
}

func TestResponder_RestoreBringsBackSnapshotStatus(t *testing.T) {
	p := newTestPKI(t)
	cert, _ := p.issueLeaf("restored.example.net", randomSerial())
	var snapshot bytes.Buffer
	if _, _, err := p.st.Backup(&snapshot); err != nil {
		t.Fatal(err)
	}
	p.revoke(cert, 1)
	requireStatus(t, p.postFor(t, cert, p.subCert), cert, p.subCert, xocsp.Revoked)

	if err := p.st.RestoreAt(io.NopCloser(&snapshot), p.index); err != nil {
		t.Fatal(err)
	}
	requireStatus(t, p.postFor(t, cert, p.subCert), cert, p.subCert, xocsp.Good)
}

// otherState is a state database whose chain has the fixture's CA IDs but
// new keys and certificates, and a leaf with a given serial.
type otherState struct {
	backup []byte
	sub    *x509.Certificate
	leaf   *x509.Certificate
}

// buildOtherState writes otherState with keys in the fixture's token.
func buildOtherState(t *testing.T, p *testPKI, serial *big.Int) *otherState {
	t.Helper()
	st, err := fsm.Open(filepath.Join(t.TempDir(), "state.db"), p.logger)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rootSigner, subSigner := p.generateKey("root-key-b"), p.generateKey("sub-key-b")
	rootTmpl := caTemplate("Other AnchorCA", false)
	root := signCert(t, rootTmpl, rootTmpl, rootSigner.Public(), rootSigner)
	sub := signCert(t, caTemplate("Other SubCA", true), root, subSigner.Public(), rootSigner)

	var index uint64
	applyTo(t, st, &index, fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: "acme"})
	applyTo(t, st, &index, fsm.CmdCreateRealm, fsm.CreateRealm{Org: "acme", Name: "prod"})
	applyTo(t, st, &index, fsm.CmdCreateChain, fsm.CreateChain{
		Org: "acme", Realm: "prod", Name: "web",
		Root:  fsm.CA{Name: "root", KeyID: "root-key-b", CertDER: root.Raw},
		SubCA: fsm.CA{Name: "sub1", KeyID: "sub-key-b", CertDER: sub.Raw},
	})
	leaf := issueLeafUnder(t, st, &index, subID, sub, subSigner, serial)
	var backup bytes.Buffer
	if _, _, err := st.Backup(&backup); err != nil {
		t.Fatal(err)
	}
	return &otherState{backup: backup.Bytes(), sub: sub, leaf: leaf}
}

func TestResponder_RestoreRebuildsIssuerIndex(t *testing.T) {
	p := newTestPKI(t)
	serial := randomSerial()
	oldLeaf, _ := p.issueLeaf("before-restore.example.net", serial)
	requireStatus(t, p.postFor(t, oldLeaf, p.subCert), oldLeaf, p.subCert, xocsp.Good)

	other := buildOtherState(t, p, serial)
	if err := p.st.RestoreAt(io.NopCloser(bytes.NewReader(other.backup)), p.index); err != nil {
		t.Fatal(err)
	}

	if body := p.postFor(t, oldLeaf, p.subCert); !bytes.Equal(body, xocsp.UnauthorizedErrorResponse) {
		t.Errorf("request for the replaced SubCA: response %x, want unauthorized", body)
	}
	// The new leaf has the cached response's CA ID and serial, so only a
	// rebuilt index keeps the old response from being served for it.
	requireStatus(t, p.postFor(t, other.leaf, other.sub), other.leaf, other.sub, xocsp.Good)
}

// TestResponder_RevocationsUnderConcurrentRequests revokes leaves while
// other goroutines request them, and checks that a request sent after a
// revocation was applied states it.
func TestResponder_RevocationsUnderConcurrentRequests(t *testing.T) {
	p := newTestPKI(t)
	var certs []*x509.Certificate
	for range 8 {
		cert, _ := p.issueLeaf("busy.example.net", randomSerial())
		certs = append(certs, cert)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	for i := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for n := i; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				der, err := xocsp.CreateRequest(certs[n%len(certs)], p.subCert, nil)
				if err != nil {
					t.Error(err)
					return
				}
				resp, err := http.Post(p.ocspURL(), "application/ocsp-request", bytes.NewReader(der))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		}()
	}
	for _, cert := range certs {
		p.revoke(cert, 4)
		requireStatus(t, p.postFor(t, cert, p.subCert), cert, p.subCert, xocsp.Revoked)
	}
	close(stop)
	for range 4 {
		<-done
	}
}
