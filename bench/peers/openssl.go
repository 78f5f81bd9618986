package peers

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// OCSPServer is a running peer OCSP responder.
type OCSPServer struct {
	*Process
	// Addr is host:port to connect to, and Prefix the URL path.
	Addr, Prefix string
}

// WriteIndex writes certs as valid entries of an OpenSSL CA database
// (index.txt): status, expiry, empty revocation date, serial in hex,
// file name "unknown" and subject. The attribute file beside it allows
// several certificates with one subject, which renewals have.
func WriteIndex(path string, certs []*x509.Certificate) error {
	if err := os.WriteFile(path+".attr", []byte("unique_subject = no\n"), 0o600); err != nil {
		return err
	}
	var b strings.Builder
	for _, c := range certs {
		serial := strings.ToUpper(c.SerialNumber.Text(16))
		if len(serial)%2 == 1 {
			serial = "0" + serial
		}
		fmt.Fprintf(&b, "V\t%s\t\t%s\tunknown\t/CN=%s\n",
			c.NotAfter.UTC().Format("060102150405Z"), serial, c.Subject.CommonName)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// StartOpenSSLOCSP runs `openssl ocsp` as a responder for certs, issued by
// the CA in issuerFile, signing with responder, with `-multi` worker
// processes. OpenSSL 3.0 takes a port only, so it listens on every
// address; the benchmark connects to 127.0.0.1 alone.
func StartOpenSSLOCSP(ctx context.Context, dir, issuerFile string, certs []*x509.Certificate,
	responder *KeyPair, multi int) (*OCSPServer, error) {
	index := filepath.Join(dir, "index.txt")
	if err := WriteIndex(index, certs); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p, err := Start("openssl-ocsp", filepath.Join(dir, "openssl-ocsp.log"), nil, "openssl", "ocsp",
		"-index", index, "-CA", issuerFile, "-rsigner", responder.CertFile, "-rkey", responder.KeyFile,
		"-port", strconv.Itoa(port), "-multi", strconv.Itoa(multi), "-nmin", "60", "-ignore_err")
	if err != nil {
		return nil, err
	}
	addr := LoopbackAddr(port)
	if err := p.WaitAnswering(ctx, addr, 15*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return &OCSPServer{Process: p, Addr: addr, Prefix: "/"}, nil
}
