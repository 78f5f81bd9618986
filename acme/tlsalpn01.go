package acme

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"anchor/fsm"
)

// acmeTLSProtocol is the ALPN protocol of tls-alpn-01 (RFC 8737).
const acmeTLSProtocol = "acme-tls/1"

// oidACMEIdentifier is id-pe-acmeIdentifier (RFC 8737).
var oidACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// tlsALPN01 connects with ALPN "acme-tls/1" and the identifier as SNI, and
// checks the self-signed challenge certificate (RFC 8737, and RFC 8738 for
// IP addresses). Its only subject alternative name must be the identifier,
// and its critical acmeIdentifier extension must contain the SHA-256 digest
// of the key authorization.
func (v *validator) tlsALPN01(ctx context.Context, id fsm.ACMEIdentifier,
	keyAuth string) *problem {
	conn, err := v.dialHost(ctx, "tcp", id.Value, v.tlsALPNPort)
	if err != nil {
		return asProblem(err, "tls-alpn-01 connection to %s failed: %v", id.Value, err)
	}
	defer conn.Close()
	tlsConn := tls.Client(conn, &tls.Config{
		ServerName: tlsALPNServerName(id),
		NextProtos: []string{acmeTLSProtocol},
		MinVersion: tls.VersionTLS12,
		// The challenge certificate is self-signed; the extension checked
		// below is the proof.
		InsecureSkipVerify: true,
	})
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		return newProblem(probTLS, http.StatusBadRequest,
			"tls-alpn-01 handshake with %s failed: %v", id.Value, err)
	}
	state := tlsConn.ConnectionState()
	if state.NegotiatedProtocol != acmeTLSProtocol {
		return newProblem(probTLS, http.StatusBadRequest,
			"%s did not negotiate ALPN protocol %q", id.Value, acmeTLSProtocol)
	}
	if len(state.PeerCertificates) == 0 {
		return newProblem(probTLS, http.StatusBadRequest, "%s sent no certificate", id.Value)
	}
	return checkALPNCertificate(state.PeerCertificates[0], id, keyAuth)
}

// tlsALPNServerName is the SNI of the validation: the DNS name, or for an IP
// address its reverse-mapping name (RFC 8738).
func tlsALPNServerName(id fsm.ACMEIdentifier) string {
	if id.Type != fsm.ACMEIdentifierIP {
		return id.Value
	}
	addr, err := netip.ParseAddr(id.Value)
	if err != nil {
		return id.Value
	}
	return reverseName(addr)
}

func reverseName(addr netip.Addr) string {
	const hexDigits = "0123456789abcdef"
	var b []byte
	if addr.Is4() {
		a := addr.As4()
		for i := 3; i >= 0; i-- {
			b = strconv.AppendInt(b, int64(a[i]), 10)
			b = append(b, '.')
		}
		return string(b) + "in-addr.arpa"
	}
	a := addr.As16()
	for i := 15; i >= 0; i-- {
		b = append(b, hexDigits[a[i]&0xf], '.', hexDigits[a[i]>>4], '.')
	}
	return string(b) + "ip6.arpa"
}

func checkALPNCertificate(cert *x509.Certificate, id fsm.ACMEIdentifier, keyAuth string) *problem {
	incorrect := func(format string, args ...any) *problem {
		return newProblem(probIncorrectResponse, http.StatusForbidden, format, args...)
	}
	if !certNamesOnly(cert, id) {
		return incorrect("tls-alpn-01 certificate must name only %s", id.Value)
	}
	want := sha256.Sum256([]byte(keyAuth))
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidACMEIdentifier) {
			continue
		}
		if !ext.Critical {
			return incorrect("tls-alpn-01 acmeIdentifier extension is not critical")
		}
		var digest []byte
		rest, err := asn1.Unmarshal(ext.Value, &digest)
		if err != nil || len(rest) != 0 || !bytes.Equal(digest, want[:]) {
			return incorrect("tls-alpn-01 acmeIdentifier extension is not the key " +
				"authorization digest")
		}
		return nil
	}
	return incorrect("tls-alpn-01 certificate has no acmeIdentifier extension")
}

// certNamesOnly reports whether the certificate's subject alternative names
// are exactly the identifier.
func certNamesOnly(cert *x509.Certificate, id fsm.ACMEIdentifier) bool {
	if len(cert.EmailAddresses) > 0 || len(cert.URIs) > 0 {
		return false
	}
	if id.Type == fsm.ACMEIdentifierIP {
		want := net.ParseIP(id.Value)
		return len(cert.DNSNames) == 0 && len(cert.IPAddresses) == 1 &&
			cert.IPAddresses[0].Equal(want)
	}
	return len(cert.IPAddresses) == 0 && len(cert.DNSNames) == 1 &&
		strings.EqualFold(cert.DNSNames[0], id.Value)
}
