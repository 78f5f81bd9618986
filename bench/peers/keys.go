package peers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// KeyPair names the PEM files of a certificate and its private key.
type KeyPair struct {
	CertFile, KeyFile string
	Cert              *x509.Certificate
}

// SelfSigned writes a self-signed ECDSA P-256 certificate and its key to
// dir/name.pem and dir/name.key. With ips it is a TLS server certificate
// for those addresses; without, an OCSP responder certificate
// (id-kp-OCSPSigning).
func SelfSigned(dir, name string, ips []net.IP) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "anchor bench " + name},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
	}
	if len(ips) > 0 {
		tmpl.IPAddresses = ips
		tmpl.DNSNames = []string{"localhost"}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create %s certificate: %w", name, err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	kp := &KeyPair{CertFile: filepath.Join(dir, name+".pem"),
		KeyFile: filepath.Join(dir, name+".key"), Cert: cert}
	if err := WritePEM(kp.CertFile, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return kp, WritePEM(kp.KeyFile, "PRIVATE KEY", keyDER, 0o600)
}

// WritePEM writes one PEM block to path.
func WritePEM(path, typ string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
