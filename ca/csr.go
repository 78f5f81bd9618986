package ca

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"

	"anchor/fsm"
)

// maxCSRSize bounds the input of ParseCSR. A CSR with an RSA-8192 key and a
// hundred names stays well below it.
const maxCSRSize = 64 << 10

// ParseCSR parses a PKCS#10 certificate request (RFC 2986), DER or PEM
// ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST"), and verifies its
// self-signature. Every failure is a CodeInvalidArgument error that says
// what is wrong with the input.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	if len(data) > maxCSRSize {
		return nil, fsm.Errorf(fsm.CodeInvalidArgument, "CSR of %d bytes exceeds the limit of %d",
			len(data), maxCSRSize)
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, fsm.Errorf(fsm.CodeInvalidArgument, "malformed CSR: invalid PEM encoding")
		}
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fsm.Errorf(fsm.CodeInvalidArgument,
				"malformed CSR: PEM block %q is not a CERTIFICATE REQUEST", block.Type)
		}
		data = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(data)
	if err != nil {
		return nil, fsm.Errorf(fsm.CodeInvalidArgument, "malformed CSR: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fsm.Errorf(fsm.CodeInvalidArgument, "CSR signature does not verify: %v", err)
	}
	return csr, nil
}
