package acmeload

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
)

// Issuance is one completed ACME flow.
type Issuance struct {
	// Node is the index of the directory that served the flow.
	Node int
	// Start, FinalizeSent, FinalizeDone and End mark the flow's steps.
	Start, FinalizeSent, FinalizeDone, End time.Time
	// Leaf and Issuer are the downloaded certificate and the next one in
	// its chain.
	Leaf, Issuer *x509.Certificate
}

// Latency is the time of the whole flow.
func (i *Issuance) Latency() time.Duration { return i.End.Sub(i.Start) }

// issue runs one ACME flow for name on core.
func issue(ctx context.Context, core *api.Core, name string, poll time.Duration) (*Issuance, error) {
	is := &Issuance{Start: time.Now()}
	order, err := core.Orders.New(ctx, []string{name}, nil)
	if err != nil {
		return nil, fmt.Errorf("new order: %w", err)
	}
	// An order that is ready has every authorization valid (RFC 8555,
	// 7.1.6), so its authorizations need no fetch. Fetching them anyway can
	// deadlock Pebble (see the package documentation).
	if order.Status != acme.StatusReady {
		for _, url := range order.Authorizations {
			if err := authorize(ctx, core, url, poll); err != nil {
				return nil, err
			}
		}
	}
	csr, err := newCSR(name)
	if err != nil {
		return nil, err
	}
	is.FinalizeSent = time.Now()
	done, err := core.Orders.UpdateForCSR(ctx, order.Finalize, csr)
	if err != nil {
		return nil, fmt.Errorf("finalize: %w", err)
	}
	is.FinalizeDone = time.Now()
	for done.Status != acme.StatusValid {
		if done.Status == acme.StatusInvalid {
			return nil, errors.New("order became invalid after finalize")
		}
		if err := sleep(ctx, poll); err != nil {
			return nil, err
		}
		if done, err = core.Orders.Get(ctx, order.Location); err != nil {
			return nil, fmt.Errorf("poll order: %w", err)
		}
	}
	raw, err := core.Certificates.Get(ctx, done.Certificate, true)
	if err != nil {
		return nil, fmt.Errorf("download certificate: %w", err)
	}
	is.End = time.Now()
	is.Leaf, is.Issuer, err = parseChain(raw.Cert)
	return is, err
}

// authorize fetches an authorization and, when it is pending, responds to
// its http-01 challenge and polls until it is valid.
func authorize(ctx context.Context, core *api.Core, url string, poll time.Duration) error {
	authz, err := core.Authorizations.Get(ctx, url)
	if err != nil {
		return fmt.Errorf("get authorization: %w", err)
	}
	if authz.Status == acme.StatusValid {
		return nil
	}
	var chal *acme.Challenge
	for i := range authz.Challenges {
		if authz.Challenges[i].Type == "http-01" {
			chal = &authz.Challenges[i]
		}
	}
	if chal == nil {
		return fmt.Errorf("authorization %s is %s and offers no http-01 challenge", url, authz.Status)
	}
	if _, err := core.Challenges.New(ctx, chal.URL); err != nil {
		return fmt.Errorf("respond to challenge: %w", err)
	}
	for authz.Status != acme.StatusValid {
		if authz.Status == acme.StatusInvalid {
			return fmt.Errorf("authorization %s became invalid", url)
		}
		if err := sleep(ctx, poll); err != nil {
			return err
		}
		if authz, err = core.Authorizations.Get(ctx, url); err != nil {
			return fmt.Errorf("poll authorization: %w", err)
		}
	}
	return nil
}

// newCSR returns a CSR for name with a new P-256 key, what lego's Obtain
// would send.
func newCSR(name string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
}

func parseChain(bundle []byte) (leaf, issuer *x509.Certificate, err error) {
	var certs []*x509.Certificate
	for rest := bundle; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("parse downloaded certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 2 {
		return nil, nil, fmt.Errorf("downloaded chain has %d certificates, want leaf and issuer", len(certs))
	}
	return certs[0], certs[1], nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
