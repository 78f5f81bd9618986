package ocspload

import (
	"bufio"
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
)

// readResponse reads one HTTP/1.x response. keep reports whether the
// connection stays open after it: HTTP/1.1 unless "Connection: close",
// HTTP/1.0 only with "Connection: keep-alive". A response without
// Content-Length is read to the end of the connection.
func readResponse(br *bufio.Reader) (status int, body []byte, keep bool, err error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, nil, false, err
	}
	proto, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/1.") || len(rest) < 3 {
		return 0, nil, false, fmt.Errorf("invalid status line %q", line)
	}
	if status, err = strconv.Atoi(rest[:3]); err != nil {
		return 0, nil, false, fmt.Errorf("invalid status line %q", line)
	}
	keep = proto == "HTTP/1.1"

	length := -1
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return 0, nil, false, err
		}
		h = strings.TrimSpace(h)
		if h == "" {
			break
		}
		name, value, _ := strings.Cut(h, ":")
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "content-length":
			if length, err = strconv.Atoi(value); err != nil {
				return 0, nil, false, fmt.Errorf("invalid Content-Length %q", value)
			}
		case "connection":
			keep = strings.EqualFold(value, "keep-alive")
		}
	}

	if length < 0 {
		body, err = io.ReadAll(br)
		return status, body, false, err
	}
	body = make([]byte, length)
	_, err = io.ReadFull(br, body)
	return status, body, keep, err
}

// successPrefix is the start of every successful OCSPResponse after its
// outer SEQUENCE header: responseStatus ENUMERATED successful (0).
var successPrefix = []byte{0x0a, 0x01, 0x00}

// checkStatus checks that body is an OCSPResponse with responseStatus
// successful, without parsing the rest.
func checkStatus(body []byte) error {
	if len(body) < 8 || body[0] != 0x30 {
		return fmt.Errorf("response of %d bytes is not an OCSPResponse", len(body))
	}
	skip := 2
	if body[1]&0x80 != 0 {
		skip += int(body[1] & 0x7f)
	}
	if len(body) < skip+3 || !bytes.Equal(body[skip:skip+3], successPrefix) {
		return fmt.Errorf("OCSP responseStatus is not successful: % x", body[:min(len(body), 8)])
	}
	return nil
}

// checkFull parses body and checks the status good, the serial and, when
// nonce is set, its echo. The signature is checked against the certificate
// the response carries, if any; the responders differ in who signs.
func checkFull(body []byte, serial *big.Int, nonce []byte) error {
	resp, err := xocsp.ParseResponse(body, nil)
	if err != nil {
		return fmt.Errorf("parse OCSP response: %w", err)
	}
	if resp.SerialNumber.Cmp(serial) != 0 {
		return fmt.Errorf("response for serial %x, want %x", resp.SerialNumber, serial)
	}
	if resp.Status != xocsp.Good {
		return fmt.Errorf("serial %x has status %d, want good", serial, resp.Status)
	}
	if nonce == nil {
		return nil
	}
	exts, err := responseExtensions(body)
	if err != nil {
		return err
	}
	for _, ext := range exts {
		if ext.Id.Equal(oidNonce) {
			if !bytes.Contains(ext.Value, nonce) {
				return errors.New("response echoes another nonce")
			}
			return nil
		}
	}
	return errors.New("response does not echo the request's nonce")
}

// The structures of RFC 6960, 4.2.1, as far as responseExtensions, which
// x/crypto/ocsp does not return.
type (
	ocspResponse struct {
		Status   asn1.Enumerated
		Response responseBytes `asn1:"explicit,tag:0,optional"`
	}
	responseBytes struct {
		ResponseType asn1.ObjectIdentifier
		Response     []byte
	}
	basicResponse struct {
		TBSResponseData    responseData
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Signature          asn1.BitString
		Certs              []asn1.RawValue `asn1:"explicit,tag:0,optional"`
	}
	responseData struct {
		Version            int `asn1:"optional,default:0,explicit,tag:0"`
		ResponderID        asn1.RawValue
		ProducedAt         time.Time `asn1:"generalized"`
		Responses          []asn1.RawValue
		ResponseExtensions []pkix.Extension `asn1:"explicit,tag:1,optional"`
	}
)

// responseExtensions returns the responseExtensions of a successful
// OCSPResponse, where RFC 9654 puts the nonce.
func responseExtensions(der []byte) ([]pkix.Extension, error) {
	var resp ocspResponse
	if _, err := asn1.Unmarshal(der, &resp); err != nil {
		return nil, fmt.Errorf("parse OCSPResponse: %w", err)
	}
	var basic basicResponse
	if _, err := asn1.Unmarshal(resp.Response.Response, &basic); err != nil {
		return nil, fmt.Errorf("parse BasicOCSPResponse: %w", err)
	}
	return basic.TBSResponseData.ResponseExtensions, nil
}
