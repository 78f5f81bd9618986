package acme

import (
	"context"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dns01"

	"anchor/internal/testenv"
)

// legoDNSProvider is a lego dns-01 provider that writes the TXT records into
// the test DNS server, which the ACME server also queries.
type legoDNSProvider struct {
	dns *testDNS
}

func (p *legoDNSProvider) Present(ctx context.Context, domain, _, keyAuth string) error {
	info := dns01.GetChallengeInfo(ctx, domain, keyAuth)
	p.dns.addTXT(info.EffectiveFQDN, info.Value)
	return nil
}

func (p *legoDNSProvider) CleanUp(ctx context.Context, domain, _, keyAuth string) error {
	info := dns01.GetChallengeInfo(ctx, domain, keyAuth)
	p.dns.removeTXT(info.EffectiveFQDN, info.Value)
	return nil
}

// Timeout shortens lego's propagation polling, which sleeps one interval
// before its first check.
func (p *legoDNSProvider) Timeout() (timeout, interval time.Duration) {
	return 10 * time.Second, 100 * time.Millisecond
}

// useLegoResolver makes lego's dns-01 propagation check query the test DNS
// server at addr until the test ends. lego keeps the resolver in a package
// variable, so tests that use it must not run in parallel.
func useLegoResolver(t *testing.T, addr string) {
	prev := dns01.DefaultClient()
	dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{
		RecursiveNameservers: []string{addr}, Timeout: 2 * time.Second,
	}))
	t.Cleanup(func() { dns01.SetDefaultClient(prev) })
}

// testLegoDNS01 obtains a certificate for a wildcard and its base domain,
// whose two authorizations need two TXT records at the same name.
func testLegoDNS01(t *testing.T, env *testenv.Env, a *clusterACME) {
	client := newLegoClient(t, a, addClusterEAB(t, env, "kid-dns01", nil))
	useLegoResolver(t, a.dns.addr)
	// The test server is the only name server: there are no authoritative
	// servers to ask.
	err := client.Challenge.SetDNS01Provider(&legoDNSProvider{dns: a.dns},
		dns01.DisableAuthoritativeNssPropagationRequirement())
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Certificate.Obtain(t.Context(), certificate.ObtainRequest{
		Domains: []string{"dns.outside.test", "*.dns.outside.test"}, Bundle: true,
		KeyType: certcrypto.EC256,
	})
	if err != nil {
		t.Fatalf("obtain: %v", err)
	}
	leaf := verifyLeaf(t, env, res.Certificate, "dns.outside.test", "any.dns.outside.test")
	checkOrderValid(t, env, leaf)
}
