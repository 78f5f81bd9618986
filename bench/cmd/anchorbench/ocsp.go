package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"anchor/bench/acmeload"
	"anchor/bench/ocspload"
	"anchor/bench/peers"
	"anchor/bench/result"
)

// ocspCase is a variant of the OCSP load.
type ocspCase struct {
	name   string
	method ocspload.Method
	nonce  bool
}

var ocspCases = []ocspCase{
	{"GET pre-signed", ocspload.GET, false},
	{"POST pre-signed", ocspload.POST, false},
	{"GET nonce", ocspload.GET, true},
	{"POST nonce", ocspload.POST, true},
}

// ocspTarget is a responder under load.
type ocspTarget struct {
	name, addr, prefix string
	// nonces reports whether the responder echoes nonces; cfssl ocspserve
	// serves stored responses and does not.
	nonces bool
}

func runOCSP(ctx context.Context, args []string) error {
	var c common
	fs := flag.NewFlagSet("ocsp", flag.ExitOnError)
	c.register(fs)
	cfsslBin := fs.String("cfssl", "", "cfssl binary; empty skips cfssl")
	connList := fs.String("conns", "1,16,64,256", "comma-separated numbers of connections")
	certCount := fs.Int("certs", 300, "certificates to issue and query")
	full := fs.Duration("duration", 3*time.Second, "measured time of one run")
	_ = fs.Parse(args)
	if err := c.check(); err != nil {
		return err
	}

	conns, err := parseInts(*connList)
	if err != nil {
		return err
	}
	dir, err := workDir(&c, "ocsp")
	if err != nil {
		return err
	}
	a, err := startAnchor(ctx, &c, filepath.Join(dir, "anchor"), 1)
	if err != nil {
		return err
	}
	defer a.stopAll(&c)
	leaves, issuer, err := issueForOCSP(ctx, &c, a, *certCount)
	if err != nil {
		return err
	}

	targets, stop, err := startOCSPTargets(ctx, &c, a, dir, *cfsslBin, leaves, issuer)
	defer stop()
	if err != nil {
		return err
	}
	reqs, err := buildRequests(leaves, issuer)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if err := measureOCSP(ctx, &c, t, reqs, conns, *full); err != nil {
			return err
		}
	}
	return nil
}

// issueForOCSP issues n certificates over ACME and returns them with their
// issuer.
func issueForOCSP(ctx context.Context, c *common, a *anchorCluster,
	n int) ([]*x509.Certificate, *x509.Certificate, error) {
	const accounts = 8
	keys, err := a.createEABKeys(ctx, accounts)
	if err != nil {
		return nil, nil, err
	}
	client, err := httpsClient(a.Info.ACMECACert, accounts)
	if err != nil {
		return nil, nil, err
	}
	var accts []*acmeload.Account
	for _, k := range keys {
		acct, err := acmeload.NewAccount(ctx, client, a.directories(), k)
		if err != nil {
			return nil, nil, err
		}
		accts = append(accts, acct)
	}
	var mu sync.Mutex
	var leaves []*x509.Certificate
	var issuer *x509.Certificate
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := acmeload.Run(runCtx, acmeload.Options{
		Accounts: accts, Name: accountName, Duration: 3 * time.Minute,
		OnIssued: func(is *acmeload.Issuance) {
			mu.Lock()
			defer mu.Unlock()
			leaves, issuer = append(leaves, is.Leaf), is.Issuer
			if len(leaves) >= n {
				cancel()
			}
		},
	})
	if len(leaves) < n {
		return nil, nil, fmt.Errorf("issued %d of %d certificates: %v", len(leaves), n, res.FirstError)
	}
	return leaves[:n], issuer, nil
}

// startOCSPTargets returns the anchor node and starts the peers on the same
// certificates. stop stops the peers that started.
func startOCSPTargets(ctx context.Context, c *common, a *anchorCluster, dir, cfsslBin string,
	leaves []*x509.Certificate, issuer *x509.Certificate) ([]ocspTarget, func(), error) {
	var procs []*peers.Process
	stop := func() {
		for _, p := range procs {
			p.Stop()
		}
	}
	u, err := url.Parse(a.Info.Nodes[0].OCSPURL)
	if err != nil {
		return nil, stop, err
	}
	targets := []ocspTarget{{name: "anchor", addr: u.Host, prefix: u.Path, nonces: true}}

	issuerFile := filepath.Join(dir, "issuer.pem")
	if err := peers.WritePEM(issuerFile, "CERTIFICATE", issuer.Raw, 0o644); err != nil {
		return nil, stop, err
	}
	responder, err := peers.SelfSigned(dir, "responder", nil)
	if err != nil {
		return nil, stop, err
	}
	ossl, err := peers.StartOpenSSLOCSP(ctx, dir, issuerFile, leaves, responder, 2)
	if err != nil {
		return nil, stop, err
	}
	procs = append(procs, ossl.Process)
	targets = append(targets, ocspTarget{name: "openssl", addr: ossl.Addr, prefix: ossl.Prefix,
		nonces: true})
	if cfsslBin == "" {
		return targets, stop, nil
	}
	c.logger.Info("signing cfssl responses", "certificates", len(leaves))
	responses, err := peers.SignCFSSLResponses(ctx, cfsslBin, dir, issuerFile, leaves, responder)
	if err != nil {
		return nil, stop, err
	}
	cf, err := peers.StartCFSSL(ctx, cfsslBin, dir, responses)
	if err != nil {
		return nil, stop, err
	}
	procs = append(procs, cf.Process)
	return append(targets, ocspTarget{name: "cfssl", addr: cf.Addr, prefix: cf.Prefix}), stop, nil
}

// ocspRequests holds one request per certificate, without and with a nonce.
type ocspRequests struct {
	plain, nonce []*ocspload.Request
}

func buildRequests(leaves []*x509.Certificate, issuer *x509.Certificate) (*ocspRequests, error) {
	r := &ocspRequests{}
	for _, leaf := range leaves {
		p, err := ocspload.NewRequest(leaf, issuer, false)
		if err != nil {
			return nil, err
		}
		n, err := ocspload.NewRequest(leaf, issuer, true)
		if err != nil {
			return nil, err
		}
		r.plain, r.nonce = append(r.plain, p), append(r.nonce, n)
	}
	return r, nil
}

func measureOCSP(ctx context.Context, c *common, t ocspTarget, reqs *ocspRequests, conns []int,
	full time.Duration) error {
	// One pass over every certificate fills the responder's cache, so that
	// "pre-signed" measures cached responses.
	if _, err := ocspload.Run(ctx, ocspload.Options{Addr: t.addr, Prefix: t.prefix,
		Method: ocspload.GET, Requests: reqs.plain, Conns: 4, Duration: time.Second}); err != nil {
		return err
	}
	warmup, duration := c.window(full)
	for _, oc := range ocspCases {
		if oc.nonce && !t.nonces {
			continue
		}
		requests := reqs.plain
		if oc.nonce {
			requests = reqs.nonce
		}
		for _, n := range conns {
			for run := 1; run <= c.runs; run++ {
				res, err := ocspload.Run(ctx, ocspload.Options{
					Addr: t.addr, Prefix: t.prefix, Method: oc.method, Requests: requests,
					Conns: n, Warmup: warmup, Duration: duration,
				})
				if err != nil {
					return err
				}
				if res.FirstError != nil {
					c.logger.Warn("ocsp request failed", "target", t.name, "case", oc.name,
						"conns", n, "errors", res.Errors, "first", res.FirstError)
				}
				if err := c.results.Write(&result.Record{
					Bench: "ocsp", Target: t.name, Case: oc.name, Conc: n, Run: run,
					Ops: res.Ops, Errors: res.Errors, Seconds: res.Window.Seconds(),
					Rate: float64(res.Ops) / res.Window.Seconds(), Latency: result.Summarize(res.Latencies),
					Extra: map[string]float64{"reconnects": float64(res.Reconnect)},
				}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
