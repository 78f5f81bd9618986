package fsm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// pkiState is an FSM with organization "o", realm "r" and chain "c", whose
// SubCA "sub" is signed by its root, as the CA package creates them.
type pkiState struct {
	t        *testing.T
	fsm      *FSM
	index    uint64
	chain    string
	rootKey  *ecdsa.PrivateKey
	rootCert *x509.Certificate
	subKey   *ecdsa.PrivateKey
	subCert  *x509.Certificate
}

func newPKIState(t *testing.T) *pkiState {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	f, err := Open(filepath.Join(t.TempDir(), "state.db"), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	s := &pkiState{t: t, fsm: f, chain: ChainID("o", "r", "c"), rootKey: newKey(t)}
	rootTmpl := caCertTemplate("root")
	s.rootCert = s.sign(rootTmpl, rootTmpl, &s.rootKey.PublicKey, s.rootKey)
	s.subKey = newKey(t)
	s.subCert = s.sign(caCertTemplate("sub"), s.rootCert, &s.subKey.PublicKey, s.rootKey)
	s.must(CmdCreateOrganization, CreateOrganization{Name: "o"})
	s.must(CmdCreateRealm, CreateRealm{Org: "o", Name: "r"})
	s.must(CmdCreateChain, CreateChain{Org: "o", Realm: "r", Name: "c",
		Root:  CA{Name: "root", KeyID: "root-key", CertDER: s.rootCert.Raw},
		SubCA: CA{Name: "sub", KeyID: "sub-key", CertDER: s.subCert.Raw},
	})
	return s
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func caCertTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

func (s *pkiState) sign(tmpl, parent *x509.Certificate, pub any,
	key *ecdsa.PrivateKey) *x509.Certificate {
	s.t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		s.t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		s.t.Fatal(err)
	}
	return cert
}

// leaf returns a leaf certificate with the given serial, signed by the SubCA.
func (s *pkiState) leaf(serial *big.Int, key *ecdsa.PrivateKey, names ...string) *x509.Certificate {
	s.t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: serial, DNSNames: names,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
	}
	return s.sign(tmpl, s.subCert, &key.PublicKey, s.subKey)
}

func (s *pkiState) apply(typ CommandType, payload any) (*Result, error) {
	s.t.Helper()
	data, err := MustCommand(typ, payload).Encode()
	if err != nil {
		s.t.Fatal(err)
	}
	s.index++
	res := s.fsm.Apply(&raft.Log{Index: s.index, Type: raft.LogCommand, Data: data}).(*Result)
	if res.Err != nil {
		return res, res.Err
	}
	return res, nil
}

func (s *pkiState) must(typ CommandType, payload any) *Result {
	s.t.Helper()
	res, err := s.apply(typ, payload)
	if err != nil {
		s.t.Fatalf("apply %s: %v", typ, err)
	}
	return res
}

func (s *pkiState) view(fn func(tx *Tx) error) {
	s.t.Helper()
	if err := s.fsm.View(fn); err != nil {
		s.t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, code Code, fragment string) {
	t.Helper()
	if CodeOf(err) != code || err == nil {
		t.Fatalf("error %v, want code %s", err, code)
	}
	if !strings.Contains(err.Error(), fragment) {
		t.Errorf("error %q does not mention %q", err, fragment)
	}
}

func TestCreateSubCA_ChecksCertificate(t *testing.T) {
	s := newPKIState(t)
	key := newKey(t)
	constrained := caCertTemplate("constrained")
	constrained.PermittedDNSDomains = []string{"example.test"}
	nonCritical := s.sign(constrained, s.rootCert, &key.PublicKey, s.rootKey)
	constrained.PermittedDNSDomainsCritical = true
	critical := s.sign(constrained, s.rootCert, &key.PublicKey, s.rootKey)
	noPathLen := caCertTemplate("no-path-len")
	noPathLen.MaxPathLenZero = false
	noPathLen.MaxPathLen = -1
	selfTmpl := caCertTemplate("self")
	policy := Policy{NameConstraints: NameConstraints{PermittedDNS: []string{"example.test"}}}

	cases := []struct {
		name   string
		cert   *x509.Certificate
		policy Policy
		want   string
	}{
		{"not signed by the root", s.sign(selfTmpl, selfTmpl, &key.PublicKey, key),
			Policy{}, "not signed by root"},
		{"path length unset", s.sign(noPathLen, s.rootCert, &key.PublicKey, s.rootKey),
			Policy{}, "path length 0"},
		{"constraints missing", s.sign(caCertTemplate("plain"), s.rootCert, &key.PublicKey, s.rootKey),
			policy, "name constraints differ"},
		{"constraints not critical", nonCritical, policy, "not critical"},
		{"constraints not in policy", critical, Policy{}, "name constraints differ"},
		{"invalid policy", critical, Policy{KeyTypes: []string{"dsa-1024"}}, "key_types"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.apply(CmdCreateSubCA, CreateSubCA{SubCA: CA{
				ChainID: s.chain, Name: "extra", CertDER: tc.cert.Raw, Policy: tc.policy}})
			wantCode(t, err, CodeInvalidArgument, tc.want)
		})
	}

	s.must(CmdCreateSubCA, CreateSubCA{MakeDefault: true, SubCA: CA{
		ChainID: s.chain, Name: "extra", KeyID: "extra-key", CertDER: critical.Raw, Policy: policy}})
	s.view(func(tx *Tx) error {
		chain, err := tx.Chain(s.chain)
		if err != nil {
			return err
		}
		if chain.DefaultSubCAID != s.chain+"/extra" || len(chain.SubCAIDs) != 2 {
			t.Errorf("chain default %s with SubCAs %v, want the new default",
				chain.DefaultSubCAID, chain.SubCAIDs)
		}
		kp, err := tx.KeyPair(KeyPairID(critical.RawSubjectPublicKeyInfo))
		if err != nil {
			return err
		}
		if kp.HSMKeyID != "extra-key" || kp.Type != KeyTypeP256 {
			t.Errorf("SubCA key pair %+v, want HSM key extra-key of type %s", kp, KeyTypeP256)
		}
		return nil
	})
}

func TestIssueCredential_SerialBounds(t *testing.T) {
	s := newPKIState(t)
	key := newKey(t)
	twentyOctets := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 159), big.NewInt(1))
	cases := []struct {
		name   string
		serial *big.Int
		code   Code
	}{
		{"zero", big.NewInt(0), CodeInvalidArgument},
		{"21 octets", new(big.Int).Lsh(big.NewInt(1), 159), CodeInvalidArgument},
		{"20 octets", twentyOctets, ""},
		{"used", twentyOctets, CodeAlreadyExists},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cert := s.leaf(tc.serial, key, "a.test")
			_, err := s.apply(CmdIssueCredential, IssueCredential{
				ChainID: s.chain, CAID: s.chain + "/sub", Names: []string{"a.test"}, DER: cert.Raw})
			if tc.code == "" {
				if err != nil {
					t.Fatalf("serial %x rejected: %v", tc.serial, err)
				}
				return
			}
			wantCode(t, err, tc.code, "serial")
		})
	}
}

func TestIssueCredential_ChecksKeyAndRecordsKeyPair(t *testing.T) {
	s := newPKIState(t)
	key := newKey(t)
	cert := s.leaf(big.NewInt(1001), key, "a.test")
	other := s.leaf(big.NewInt(1002), newKey(t), "a.test")
	_, err := s.apply(CmdIssueCredential, IssueCredential{
		ChainID: s.chain, CAID: s.chain + "/sub", Names: []string{"a.test"},
		PublicKey: other.RawSubjectPublicKeyInfo, DER: cert.Raw})
	wantCode(t, err, CodeInvalidArgument, "public key differs")
	_, err = s.apply(CmdIssueCredential, IssueCredential{
		ChainID: s.chain, CAID: s.chain + "/sub", Names: []string{"a.test"},
		KeyPairID: KeyPairID(other.RawSubjectPublicKeyInfo), DER: cert.Raw})
	wantCode(t, err, CodeInvalidArgument, "key pair ID")

	s.must(CmdIssueCredential, IssueCredential{
		ChainID: s.chain, CAID: s.chain + "/sub", Names: []string{"a.test"}, DER: cert.Raw})
	s.view(func(tx *Tx) error {
		id := KeyPairID(cert.RawSubjectPublicKeyInfo)
		kp, err := tx.KeyPair(id)
		if err != nil {
			return err
		}
		if kp.HSMKeyID != "" || kp.Type != KeyTypeP256 {
			t.Errorf("leaf key pair %+v, want no HSM key and type %s", kp, KeyTypeP256)
		}
		cred, err := tx.Credential(SerialKey(cert.SerialNumber))
		if err != nil {
			return err
		}
		if cred.KeyPairID != id {
			t.Errorf("credential key pair %s, want %s", cred.KeyPairID, id)
		}
		return nil
	})
}
