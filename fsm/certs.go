package fsm

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"strings"
	"time"
)

// Buckets of issued certificates.
const (
	bucketCertificates  = "certificates"
	bucketCredentials   = "credentials"
	bucketCertByKeyPair = "certificate_by_key_pair"
)

// Command types of issued certificates.
const (
	CmdIssueCredential CommandType = "credential.issue"
	CmdRevoke          CommandType = "credential.revoke"
)

// SerialKey returns the key under which a serial number is stored: lower-case
// hex without leading zeros.
func SerialKey(serial *big.Int) string { return strings.ToLower(serial.Text(16)) }

// Certificate groups the credentials issued for one set of names under one
// SubCA. A renewal, a credential with the same key pair and names, joins the
// certificate. A reissue (IssueCredential.CertificateID) joins it with a key
// pair that may be new. Any other new key pair makes a new certificate.
type Certificate struct {
	ID      string   `json:"id"`
	ChainID string   `json:"chain_id"`
	CAID    string   `json:"ca_id"`
	Names   []string `json:"names"`
	// KeyPairID names the KeyPair of the newest credential: the SHA-256 of
	// the leaf's SubjectPublicKeyInfo, hex. The CA stores only the public key,
	// because ACME clients keep their private keys.
	KeyPairID string `json:"key_pair_id"`
	PublicKey []byte `json:"public_key"`
	// Serials lists the credentials, oldest first.
	Serials   []string  `json:"serials"`
	ServiceID string    `json:"service_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Credential is one issued X.509 certificate: a validity period of a
// Certificate's key pair.
type Credential struct {
	Serial        string    `json:"serial"`
	CertificateID string    `json:"certificate_id"`
	CAID          string    `json:"ca_id"`
	KeyPairID     string    `json:"key_pair_id,omitempty"`
	DER           []byte    `json:"der"`
	NotBefore     time.Time `json:"not_before"`
	NotAfter      time.Time `json:"not_after"`
	OrderID       string    `json:"order_id,omitempty"`
	IssuedAt      time.Time `json:"issued_at"`
	Revoked       bool      `json:"revoked"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
	// Reason is the CRLReason code (RFC 5280, 5.3.1).
	Reason int `json:"reason"`
}

// IssueCredential is the payload of CmdIssueCredential. Committing it reserves
// the serial: a second credential with the same serial is rejected, so a
// signature whose commit fails is never handed out. PublicKey and KeyPairID
// may be left empty; the handler takes them from the certificate and
// rejects values that differ from it.
type IssueCredential struct {
	ChainID   string   `json:"chain_id"`
	CAID      string   `json:"ca_id"`
	Names     []string `json:"names"`
	KeyPairID string   `json:"key_pair_id"`
	PublicKey []byte   `json:"public_key"`
	DER       []byte   `json:"der"`
	OrderID   string   `json:"order_id,omitempty"`
	// CertificateID makes the credential a reissue of that certificate,
	// which must have the same CA and names.
	CertificateID string `json:"certificate_id,omitempty"`
	// ServiceID records the service a new certificate belongs to.
	ServiceID string `json:"service_id,omitempty"`
}

// Revoke is the payload of CmdRevoke.
type Revoke struct {
	Serial string `json:"serial"`
	Reason int    `json:"reason"`
}

func init() {
	register(CmdIssueCredential, applyIssueCredential)
	register(CmdRevoke, applyRevoke)
}

func applyIssueCredential(tx *Tx, cmd *Command) (any, error) {
	var p IssueCredential
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(p.DER)
	if err != nil {
		return nil, Errorf(CodeInvalidArgument, "invalid certificate: %v", err)
	}

	if err := checkSerial(cert.SerialNumber); err != nil {
		return nil, err
	}
	serial := SerialKey(cert.SerialNumber)
	if tx.has(bucketCredentials, serial) {
		return nil, Errorf(CodeAlreadyExists, "serial %s is already in use", serial)
	}
	if !tx.has(bucketCAs, p.CAID) {
		return nil, Errorf(CodeNotFound, "CA %q not found", p.CAID)
	}
	if err := checkCredentialKey(&p, cert); err != nil {
		return nil, err
	}
	if p.ServiceID != "" && !tx.has(bucketServices, p.ServiceID) {
		return nil, Errorf(CodeNotFound, "service %q not found", p.ServiceID)
	}
	if _, err := putKeyPair(tx, p.PublicKey, "", cmd.Time); err != nil {
		return nil, err
	}

	if p.OrderID != "" {
		// Binding the credential to its order in the same command makes
		// finalize exactly-once: a second credential for the order is rejected.
		if err := completeOrder(tx, p.OrderID, serial, cmd.Time); err != nil {
			return nil, err
		}
	}

	c, err := certificateFor(tx, &p, cmd.Time)
	if err != nil {
		return nil, err
	}
	c.KeyPairID, c.PublicKey = p.KeyPairID, p.PublicKey
	c.Serials = append(c.Serials, serial)
	if err := tx.put(bucketCertificates, c.ID, c); err != nil {
		return nil, err
	}
	cred := Credential{
		Serial: serial, CertificateID: c.ID, CAID: p.CAID, KeyPairID: p.KeyPairID, DER: p.DER,
		NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC(),
		OrderID: p.OrderID, IssuedAt: cmd.Time,
	}
	if err := indexIssuedCredential(tx, &cred); err != nil {
		return nil, err
	}
	return cred, tx.put(bucketCredentials, serial, cred)
}

// certificateFor returns the certificate that a new credential renews or
// reissues, or a new one when the key pair or the names differ.
func certificateFor(tx *Tx, p *IssueCredential, now time.Time) (*Certificate, error) {
	names := strings.Join(p.Names, ",")
	indexKey := p.CAID + "|" + p.KeyPairID + "|" + names
	if p.CertificateID != "" {
		return reissuedCertificate(tx, p, indexKey)
	}
	if id := tx.getRaw(bucketCertByKeyPair, indexKey); id != nil {
		var c Certificate
		if _, err := tx.get(bucketCertificates, string(id), &c); err != nil {
			return nil, err
		}
		return &c, nil
	}
	id := hex.EncodeToString(uint64Bytes(tx.Index()))
	if err := tx.putRaw(bucketCertByKeyPair, indexKey, []byte(id)); err != nil {
		return nil, err
	}
	return &Certificate{
		ID: id, ChainID: p.ChainID, CAID: p.CAID, Names: p.Names,
		KeyPairID: p.KeyPairID, PublicKey: p.PublicKey, ServiceID: p.ServiceID, CreatedAt: now,
	}, nil
}

// reissuedCertificate returns the certificate a reissue names, after
// checking that the CA and the names are unchanged. A new key pair is
// indexed too, so a later renewal with that key finds the certificate.
func reissuedCertificate(tx *Tx, p *IssueCredential, indexKey string) (*Certificate, error) {
	c, err := tx.Certificate(p.CertificateID)
	if err != nil {
		return nil, err
	}
	if c.CAID != p.CAID || strings.Join(c.Names, ",") != strings.Join(p.Names, ",") {
		return nil, Errorf(CodeInvalidArgument,
			"reissue of certificate %s must keep its CA %s and names %v", c.ID, c.CAID, c.Names)
	}
	if tx.getRaw(bucketCertByKeyPair, indexKey) == nil {
		if err := tx.putRaw(bucketCertByKeyPair, indexKey, []byte(c.ID)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkSerial enforces RFC 5280, 4.1.2.2: a positive serial of at most 20
// octets in its DER encoding.
func checkSerial(serial *big.Int) error {
	octets := len(serial.Bytes())
	if serial.BitLen()%8 == 0 {
		octets++ // a leading zero octet keeps the INTEGER positive
	}
	if serial.Sign() <= 0 || octets > 20 {
		return Errorf(CodeInvalidArgument, "serial %s is not a positive integer of at most 20 octets",
			serial.Text(16))
	}
	return nil
}

// checkCredentialKey fills in or checks the payload's public key and key
// pair ID against the certificate's.
func checkCredentialKey(p *IssueCredential, cert *x509.Certificate) error {
	spki := cert.RawSubjectPublicKeyInfo
	if len(p.PublicKey) == 0 {
		p.PublicKey = spki
	}
	if !bytes.Equal(p.PublicKey, spki) {
		return Errorf(CodeInvalidArgument, "public key differs from the certificate's")
	}
	id := KeyPairID(spki)
	if p.KeyPairID == "" {
		p.KeyPairID = id
	}
	if p.KeyPairID != id {
		return Errorf(CodeInvalidArgument, "key pair ID %s differs from the certificate's key %s",
			p.KeyPairID, id)
	}
	return nil
}

func applyRevoke(tx *Tx, cmd *Command) (any, error) {
	var p Revoke
	if err := decodePayload(cmd, &p); err != nil {
		return nil, err
	}
	if p.Reason < 0 || p.Reason > 10 || p.Reason == 7 {
		return nil, Errorf(CodeInvalidArgument, "invalid revocation reason code %d", p.Reason)
	}
	cred, err := tx.Credential(p.Serial)
	if err != nil {
		return nil, err
	}
	if cred.Revoked {
		return nil, Errorf(CodeAlreadyExists, "certificate %s is already revoked", p.Serial)
	}
	cred.Revoked = true
	cred.RevokedAt = cmd.Time
	cred.Reason = p.Reason
	if err := indexRevokedCredential(tx, cred); err != nil {
		return nil, err
	}
	return cred, tx.put(bucketCredentials, cred.Serial, cred)
}

// Credential returns the credential with the given serial (see SerialKey).
func (t *Tx) Credential(serial string) (*Credential, error) {
	var c Credential
	ok, err := t.get(bucketCredentials, serial, &c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "certificate with serial %s not found", serial)
	}
	return &c, nil
}

// Certificate returns a certificate with its credential serials.
func (t *Tx) Certificate(id string) (*Certificate, error) {
	var c Certificate
	ok, err := t.get(bucketCertificates, id, &c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Errorf(CodeNotFound, "certificate %q not found", id)
	}
	return &c, nil
}

// Certificates lists every certificate.
func (t *Tx) Certificates() ([]Certificate, error) {
	return list[Certificate](t, bucketCertificates, "")
}

// RevokedCredentials calls fn for each revoked credential of a CA.
//
// TODO: this scans every credential; a revocation index per CA is needed
// before CRLs of millions of entries.
func (t *Tx) RevokedCredentials(caID string, fn func(*Credential) bool) error {
	var err error
	t.scan(bucketCredentials, "", func(key string, value []byte) bool {
		var c Credential
		if err = jsonUnmarshal(value, &c); err != nil {
			return false
		}
		if c.CAID != caID || !c.Revoked {
			return true
		}
		return fn(&c)
	})
	return err
}

// CredentialCount returns the number of issued credentials.
func (t *Tx) CredentialCount() int { return t.count(bucketCredentials) }
