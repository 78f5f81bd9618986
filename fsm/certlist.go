package fsm

import (
	"encoding/json"
	"fmt"
	"strings"
)

// CertificateEntry is a certificate with its credentials, oldest first, as
// listings show it.
type CertificateEntry struct {
	Certificate Certificate  `json:"certificate"`
	Credentials []Credential `json:"credentials"`
}

// CertificateFilter selects certificates for ListCertificates. Empty fields
// match every certificate.
type CertificateFilter struct {
	// ChainPrefix matches the start of the chain ID: "org/" selects an
	// organization and "org/realm/" a realm.
	ChainPrefix string
	// ChainID selects one chain. A prefix would also match the chains
	// whose names begin with its name.
	ChainID   string
	ServiceID string
}

// Credentials returns the credentials of a certificate, oldest first.
func (t *Tx) Credentials(certificateID string) ([]Credential, error) {
	c, err := t.Certificate(certificateID)
	if err != nil {
		return nil, err
	}
	out := make([]Credential, 0, len(c.Serials))
	for _, s := range c.Serials {
		cred, err := t.Credential(s)
		if err != nil {
			return nil, err
		}
		out = append(out, *cred)
	}
	return out, nil
}

// LatestCredential returns the newest credential of a certificate.
func (t *Tx) LatestCredential(certificateID string) (*Credential, error) {
	c, err := t.Certificate(certificateID)
	if err != nil {
		return nil, err
	}
	if len(c.Serials) == 0 {
		return nil, Errorf(CodeNotFound, "certificate %q has no credential", certificateID)
	}
	return t.Credential(c.Serials[len(c.Serials)-1])
}

// ListCertificates returns the certificates that match f, in the order of
// their creation, each with its credentials.
func (t *Tx) ListCertificates(f CertificateFilter) ([]CertificateEntry, error) {
	var out []CertificateEntry
	var credErr error
	err := t.ScanCertificates(f, func(c *Certificate) bool {
		var creds []Credential
		if creds, credErr = t.Credentials(c.ID); credErr != nil {
			return false
		}
		out = append(out, CertificateEntry{Certificate: *c, Credentials: creds})
		return true
	})
	if err == nil {
		err = credErr
	}
	return out, err
}

// ScanCertificates calls fn with each certificate that matches f, in the
// order of their creation, until fn returns false. It reads the
// certificate records only, so a listing reads credentials just for the
// certificates it returns.
//
// NOTE: every call decodes every certificate record, about 3 µs each on
// the benchmark machine (BenchmarkCertificateListing). An index by chain
// and by service would avoid that for listings of millions.
func (t *Tx) ScanCertificates(f CertificateFilter, fn func(*Certificate) bool) error {
	var err error
	t.scan(bucketCertificates, "", func(key string, value []byte) bool {
		var c Certificate
		if err = json.Unmarshal(value, &c); err != nil {
			err = fmt.Errorf("decode %s/%s: %w", bucketCertificates, key, err)
			return false
		}
		switch {
		case !strings.HasPrefix(c.ChainID, f.ChainPrefix),
			f.ChainID != "" && c.ChainID != f.ChainID,
			f.ServiceID != "" && c.ServiceID != f.ServiceID:
			return true
		}
		return fn(&c)
	})
	return err
}
