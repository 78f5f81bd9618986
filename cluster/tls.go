package cluster

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Organizational units of the cluster-internal CA's certificates. A node
// certificate names the node ID in its common name; an admin certificate's
// OU carries its role after the prefix.
const (
	NodeOU        = "anchor-node"
	AdminOUPrefix = "anchor-admin:"
)

// Admin roles, carried in an admin certificate's OU after AdminOUPrefix.
const (
	// RoleClusterAdmin may call every administrative method.
	RoleClusterAdmin = "cluster-admin"
	// RoleOrgAdminPrefix followed by an organization name may administer
	// that organization only.
	RoleOrgAdminPrefix = "org-admin/"
	// RoleReadOnly may call read methods only.
	RoleReadOnly = "read-only"
)

// TLSConfig names the PEM files of a node's mutual TLS credentials, all
// issued by the cluster-internal CA. The private key file must be readable
// only by the node's user.
type TLSConfig struct {
	CAFile   string `json:"ca_file"`
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
}

// Credentials are loaded mutual TLS credentials.
type Credentials struct {
	pool *x509.CertPool
	cert tls.Certificate
	id   string // the node ID in the certificate's common name
	// caFingerprint is the SHA-256 of the first CA certificate, hex.
	caFingerprint string
}

// LoadCredentials reads and checks the files of c.
func LoadCredentials(c TLSConfig) (*Credentials, error) {
	if c.CAFile == "" || c.CertFile == "" || c.KeyFile == "" {
		return nil, errors.New("tls config: ca_file, cert_file and key_file are all required")
	}
	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read tls ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("tls ca_file %s contains no PEM certificate: give the cluster-internal CA certificate", c.CAFile)
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls cert_file %s and key_file %s: %w", c.CertFile, c.KeyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse tls cert_file %s: %w", c.CertFile, err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:     pool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("tls cert_file %s is not a node certificate of ca_file %s: %w",
			c.CertFile, c.CAFile, err)
	}
	block, _ := pem.Decode(caPEM)
	sum := sha256.Sum256(block.Bytes)
	return &Credentials{pool: pool, cert: cert, id: leaf.Subject.CommonName,
		caFingerprint: hex.EncodeToString(sum[:])}, nil
}

// NodeID returns the node ID that the certificate names.
func (c *Credentials) NodeID() string { return c.id }

// ServerConfig requires clients to present a certificate of the cluster CA.
// verifyPeer adds a check of the verified chain, such as its role.
func (c *Credentials) ServerConfig(verifyPeer func(*x509.Certificate) error) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.cert},
		ClientCAs:    c.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		VerifyPeerCertificate: func(_ [][]byte, chains [][]*x509.Certificate) error {
			if verifyPeer == nil || len(chains) == 0 {
				return nil
			}
			return verifyPeer(chains[0][0])
		},
	}
}

// ClientConfig presents the node certificate and accepts only servers whose
// certificate is a node certificate of the cluster CA. Node addresses are
// often IPs, so the server's name is not checked: its role is.
func (c *Credentials) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{c.cert},
		RootCAs:            c.pool,
		InsecureSkipVerify: true, // replaced by VerifyPeerCertificate below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return c.verifyServer(raw)
		},
	}
}

func (c *Credentials) verifyServer(raw [][]byte) error {
	if len(raw) == 0 {
		return errors.New("server presented no certificate")
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return fmt.Errorf("parse server certificate: %w", err)
	}
	inter := x509.NewCertPool()
	for _, r := range raw[1:] {
		if ic, err := x509.ParseCertificate(r); err == nil {
			inter.AddCert(ic)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: c.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return fmt.Errorf("server certificate is not from the cluster CA: %w", err)
	}
	return RequireNode(leaf)
}

// RequireNode accepts only node certificates.
func RequireNode(cert *x509.Certificate) error {
	for _, ou := range cert.Subject.OrganizationalUnit {
		if ou == NodeOU {
			return nil
		}
	}
	return fmt.Errorf("certificate %q is not a node certificate (OU %v)",
		cert.Subject.CommonName, cert.Subject.OrganizationalUnit)
}

// AdminRole returns the role of an admin certificate, or "" when cert is not
// one.
func AdminRole(cert *x509.Certificate) string {
	for _, ou := range cert.Subject.OrganizationalUnit {
		if role, ok := strings.CutPrefix(ou, AdminOUPrefix); ok {
			return role
		}
	}
	return ""
}
