package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// InternalCA issues the certificates that nodes and administrators present to
// each other: node certificates for Raft and gRPC between nodes, admin
// certificates for the admin API. It is separate from every chain the
// cluster serves.
//
// NOTE: its key is an ECDSA P-256 key in a PEM file (mode 0600), not in an
// HSM. Keep the directory off the nodes once their certificates are issued.
type InternalCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// Internal CA file names inside its directory.
const (
	internalCACert = "ca.pem"
	internalCAKey  = "ca-key.pem"
)

// CreateInternalCA makes a new internal CA in dir, or loads the one there.
func CreateInternalCA(dir, clusterName string) (*InternalCA, error) {
	if ca, err := LoadInternalCA(dir); err == nil {
		return ca, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: clusterName + " internal CA", OrganizationalUnit: []string{"anchor-internal"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("sign internal CA: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := writeKeyPEM(filepath.Join(dir, internalCAKey), key); err != nil {
		return nil, err
	}
	if err := writeCertPEM(filepath.Join(dir, internalCACert), der); err != nil {
		return nil, err
	}
	return LoadInternalCA(dir)
}

// LoadInternalCA loads the internal CA from dir.
func LoadInternalCA(dir string) (*InternalCA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, internalCACert))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, internalCAKey))
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("internal CA files in %s are not PEM", dir)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse internal CA certificate: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse internal CA key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("internal CA key cannot sign")
	}
	return &InternalCA{cert: cert, key: signer}, nil
}

// CACertFile returns the path of the CA certificate in dir.
func CACertFile(dir string) string { return filepath.Join(dir, internalCACert) }

// IssueNode writes a node certificate and key for nodeID into dir, valid for
// the given host names and IP addresses, and returns the TLS configuration
// that uses them.
func (ca *InternalCA) IssueNode(caDir, dir, nodeID string, hosts []string) (TLSConfig, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: nodeID, OrganizationalUnit: []string{NodeOU}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	setHosts(tmpl, hosts)
	return ca.issue(caDir, dir, "node", tmpl)
}

func setHosts(tmpl *x509.Certificate, hosts []string) {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
}

// IssueServer writes a TLS server certificate for a node's public HTTPS
// listener (ACME), valid for the given host names and IP addresses.
func (ca *InternalCA) IssueServer(caDir, dir, name string, hosts []string) (TLSConfig, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name, OrganizationalUnit: []string{"anchor-server"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	setHosts(tmpl, hosts)
	return ca.issue(caDir, dir, "server", tmpl)
}

// IssueAdmin writes an admin client certificate with the given role.
func (ca *InternalCA) IssueAdmin(caDir, dir, name, role string) (TLSConfig, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name, OrganizationalUnit: []string{AdminOUPrefix + role}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return ca.issue(caDir, dir, "admin", tmpl)
}

func (ca *InternalCA) issue(caDir, dir, base string, tmpl *x509.Certificate) (TLSConfig, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return TLSConfig{}, err
	}
	if tmpl.SerialNumber, err = randomSerial(); err != nil {
		return TLSConfig{}, err
	}
	now := time.Now()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.AddDate(2, 0, 0)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return TLSConfig{}, fmt.Errorf("sign %s certificate %q: %w", base, tmpl.Subject.CommonName, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return TLSConfig{}, err
	}
	cfg := TLSConfig{
		CAFile:   CACertFile(caDir),
		CertFile: filepath.Join(dir, base+".pem"),
		KeyFile:  filepath.Join(dir, base+"-key.pem"),
	}
	if err := writeKeyPEM(cfg.KeyFile, key); err != nil {
		return TLSConfig{}, err
	}
	return cfg, writeCertPEM(cfg.CertFile, der)
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func writeKeyPEM(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func writeCertPEM(path string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
