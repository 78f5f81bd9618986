package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"

	"anchor/internal/localcluster"
)

// TestCluster_LeaderKilledDuringIssuance kills the leader process in the
// middle of a stream of ACME issuances spread over all nodes. Clients move
// to another node when theirs fails; every issuance completes, no serial
// repeats, and every certificate is good on every surviving node.
func TestCluster_LeaderKilledDuringIssuance(t *testing.T) {
	const total = 20
	c, info := startCluster(t, []string{"*.kill.test"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// One account, registered on node 1 and looked up by key on the others,
	// so each node's client uses that node's account URL.
	first, user := newLegoClient(t, info.Nodes[0].ACMEDirectory, info.ACMECACert)
	reg, err := first.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{
		TermsOfServiceAgreed: true, Kid: info.EAB.KeyID, HmacEncoded: info.EAB.HMACKey,
	})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	user.reg = reg
	clients := []*lego.Client{first}
	for _, n := range info.Nodes[1:] {
		cl, u := newLegoClientWithKey(t, n.ACMEDirectory, info.ACMECACert, user.key)
		// The node may not have applied the new account yet.
		deadline := time.Now().Add(5 * time.Second)
		for {
			acct, err := cl.Registration.ResolveAccountByKey(ctx)
			if err == nil {
				u.reg = acct
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("look up account on %s: %v", n.ID, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		clients = append(clients, cl)
	}

	st, err := localcluster.Status(ctx, c.Layout.Nodes[0].GRPCAddr, c.Layout.AdminTLS)
	if err != nil {
		t.Fatal(err)
	}
	leader := -1
	for i, n := range c.Layout.Nodes {
		if n.ID == st.LeaderId {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatalf("no leader in status %v", st)
	}

	serials := map[string]string{}
	var bundles [][]byte
	killedAt := time.Time{}
	for i := 0; len(bundles) < total; i++ {
		if len(bundles) == total/4 && killedAt.IsZero() {
			if err := c.StopNode(leader, true); err != nil {
				t.Fatal(err)
			}
			killedAt = time.Now()
			t.Logf("killed leader %s after %d issuances", c.Layout.Nodes[leader].ID, len(bundles))
		}
		node := i % len(clients)
		if !killedAt.IsZero() && node == leader {
			continue
		}
		name := fmt.Sprintf("c%d.kill.test", len(bundles))
		res, err := clients[node].Certificate.Obtain(ctx, certificate.ObtainRequest{
			Domains: []string{name}, Bundle: true, KeyType: certcrypto.EC256,
		})
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("issuance %s did not complete: %v", name, err)
			}
			t.Logf("issuance of %s on %s failed, retrying elsewhere: %v", name, info.Nodes[node].ID, err)
			continue
		}
		block, _ := pem.Decode(res.Certificate)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		serial := cert.SerialNumber.Text(16)
		if prev, dup := serials[serial]; dup {
			t.Fatalf("serial %s issued for %s and %s", serial, prev, name)
		}
		serials[serial] = name
		bundles = append(bundles, res.Certificate)
		if len(bundles) == total/4+1 && !killedAt.IsZero() {
			t.Logf("first issuance after the kill took %s", time.Since(killedAt).Round(time.Millisecond))
		}
	}

	var survivors []localcluster.NodeInfo
	for i, n := range info.Nodes {
		if i != leader {
			survivors = append(survivors, n)
		}
	}
	dir := t.TempDir()
	survivorInfo := *info
	survivorInfo.Nodes = survivors
	for _, b := range bundles {
		leaf, sub := splitBundle(t, dir, b)
		waitOCSPStatus(t, &survivorInfo, sub, leaf, "good")
	}
}
