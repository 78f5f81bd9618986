//go:build e2e

package drills

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"
)

// acmeAccount is the drill's ACME account. The bootstrap EAB key binds to
// one account only, so every issuance of a cluster uses this account, on
// any node: an account URL of one node is valid on the others.
type acmeAccount struct {
	key crypto.Signer
	reg *acme.ExtendedAccount
}

func (a *acmeAccount) GetEmail() string                       { return "" }
func (a *acmeAccount) GetRegistration() *acme.ExtendedAccount { return a.reg }
func (a *acmeAccount) GetPrivateKey() crypto.Signer           { return a.key }

// newLegoClient returns a lego client for a directory URL, trusting the
// cluster-internal CA for the ACME HTTPS listener.
func newLegoClient(ctx context.Context, acct *acmeAccount, dirURL string, cas *x509.CertPool) (
	*lego.Client, error) {
	cfg := lego.NewConfig(acct)
	cfg.CADirURL = dirURL
	cfg.HTTPClient = &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cas}},
	}
	return lego.NewClient(cfg)
}

// registerAccount creates the drill's account with the bootstrap EAB key on
// node 1, once per cluster.
func (c *drillCluster) registerAccount(ctx context.Context) (*acmeAccount, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.account != nil {
		return c.account, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	acct := &acmeAccount{key: key}
	client, err := newLegoClient(ctx, acct, c.nodes[0].acmeDir, c.acmeCAs)
	if err != nil {
		return nil, fmt.Errorf("lego client for %s: %w", c.nodes[0].id, err)
	}
	acct.reg, err = client.Registration.RegisterWithExternalAccountBinding(ctx,
		registration.RegisterEABOptions{
			TermsOfServiceAgreed: true, Kid: c.eab.KeyID, HmacEncoded: c.eab.HMACKey,
		})
	if err != nil {
		return nil, fmt.Errorf("register with EAB on %s: %w", c.nodes[0].id, err)
	}
	c.account = acct
	return acct, nil
}

// issued is one certificate a drill obtained.
type issued struct {
	leaf     *x509.Certificate
	issuer   *x509.Certificate
	node     string        // node whose ACME server returned it
	attempts int           // nodes tried, the successful one included
	errs     []string      // errors of the failed attempts
	elapsed  time.Duration // from the first attempt to the certificate
}

// obtain issues one certificate for domain on node i.
func (c *drillCluster) obtain(ctx context.Context, acct *acmeAccount, i int, domain string) (
	*issued, error) {
	client, err := newLegoClient(ctx, acct, c.nodes[i].acmeDir, c.acmeCAs)
	if err != nil {
		return nil, fmt.Errorf("%s: lego client: %w", c.nodes[i].id, err)
	}
	res, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{
		Domains: []string{domain}, Bundle: true, KeyType: certcrypto.EC256,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: obtain %s: %w", c.nodes[i].id, domain, err)
	}
	leaf, issuer, err := parseBundle(res.Certificate)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.nodes[i].id, err)
	}
	return &issued{leaf: leaf, issuer: issuer, node: c.nodes[i].id}, nil
}

// obtainWithFailover tries the nodes in candidates in turn, starting at
// candidates[first%len], as a client that knows every node's directory URL
// would, until one issues the certificate or maxAttempts attempts failed.
func (c *drillCluster) obtainWithFailover(ctx context.Context, acct *acmeAccount,
	candidates []int, first int, domain string, maxAttempts int) (*issued, error) {
	start := time.Now()
	var errs []string
	for attempt := 0; attempt < maxAttempts; attempt++ {
		i := candidates[(first+attempt)%len(candidates)]
		actx, cancel := context.WithTimeout(ctx, 45*time.Second)
		got, err := c.obtain(actx, acct, i, domain)
		cancel()
		if err == nil {
			got.attempts, got.errs, got.elapsed = attempt+1, errs, time.Since(start)
			return got, nil
		}
		errs = append(errs, err.Error())
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("%s: every attempt failed: %v", domain, errs)
}

// parseBundle splits lego's PEM bundle into the leaf and its issuer.
func parseBundle(bundle []byte) (leaf, issuer *x509.Certificate, err error) {
	var certs []*x509.Certificate
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("parse certificate in bundle: %w", err)
		}
		certs = append(certs, cert)
	}
	if len(certs) < 2 {
		return nil, nil, fmt.Errorf("bundle has %d certificates, want leaf and issuer", len(certs))
	}
	return certs[0], certs[1], nil
}
