package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"anchor/internal/localcluster"
)

// TestReadiness_RestartedNodeWaitsForMajority stops every node and starts one
// again. Without a majority it cannot learn the cluster's commit index, so
// /readyz, its CRLs and its ACME directory return 503 until the other nodes
// are back, and then 200.
func TestReadiness_RestartedNodeWaitsForMajority(t *testing.T) {
	c, info := startCluster(t, nil)
	client := httpsClient(t, info.ACMECACert)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	readyURL := func(i int) string {
		return "http://" + c.Layout.Nodes[i].HTTPAddr + "/readyz"
	}
	crlURL := info.Nodes[0].CRLBaseURL + info.ChainID + "/root.crl"
	for i := range c.Layout.Nodes {
		if code := waitStatus(t, ctx, client, readyURL(i), http.StatusOK); code != http.StatusOK {
			t.Fatalf("node %d /readyz: status %d, want 200", i+1, code)
		}
	}
	if code := waitStatus(t, ctx, client, crlURL, http.StatusOK); code != http.StatusOK {
		t.Fatalf("root CRL on node 1: status %d, want 200", code)
	}

	for i := range c.Layout.Nodes {
		if err := c.StopNode(i, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.StartNode(0); err != nil {
		t.Fatal(err)
	}
	resp := getWhenUp(t, ctx, client, readyURL(0))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz of a node without a majority: status %d, want 503", resp.StatusCode)
	}
	if got := resp.Header.Get("Retry-After"); got == "" {
		t.Error("/readyz 503 without Retry-After")
	}
	expectStatus(t, ctx, client, crlURL, http.StatusServiceUnavailable, "CRL without a majority")
	expectStatus(t, ctx, client, info.Nodes[0].ACMEDirectory, http.StatusServiceUnavailable,
		"ACME directory without a majority")

	for i := 1; i < len(c.Layout.Nodes); i++ {
		if err := c.StartNode(i); err != nil {
			t.Fatal(err)
		}
	}
	if code := waitStatus(t, ctx, client, readyURL(0), http.StatusOK); code != http.StatusOK {
		t.Fatalf("/readyz after the majority returned: status %d, want 200", code)
	}
	expectStatus(t, ctx, client, crlURL, http.StatusOK, "CRL after the majority returned")
	expectStatus(t, ctx, client, info.Nodes[0].ACMEDirectory, http.StatusOK,
		"ACME directory after the majority returned")
}

// expectStatus reports an error unless the first GET of url that the node accepts returns
// status want. what names the request in the message.
func expectStatus(t *testing.T, ctx context.Context, client *http.Client, url string, want int,
	what string) {
	t.Helper()
	if resp := getWhenUp(t, ctx, client, url); resp.StatusCode != want {
		t.Errorf("%s: status %d, want %d", what, resp.StatusCode, want)
	}
}

// getWhenUp repeats GET url until the node's listener accepts it, and returns
// the first response with its body closed.
func getWhenUp(t *testing.T, ctx context.Context, client *http.Client, url string) *http.Response {
	t.Helper()
	var resp *http.Response
	err := localcluster.WaitFor(ctx, func() error {
		r, err := httpGet(ctx, client, url)
		if err != nil {
			return err
		}
		resp = r
		return nil
	})
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp
}

// waitStatus repeats GET url until it returns status want or ctx ends, and returns
// the last status code.
func waitStatus(t *testing.T, ctx context.Context, client *http.Client, url string,
	want int) int {
	t.Helper()
	last := 0
	_ = localcluster.WaitFor(ctx, func() error {
		resp, err := httpGet(ctx, client, url)
		if err != nil {
			return err
		}
		last = resp.StatusCode
		if last != want {
			return fmt.Errorf("status %d", last)
		}
		return nil
	})
	return last
}

// httpsClient returns an HTTP client with a 30-second timeout that trusts the CA
// in caFile for HTTPS, such as the cluster-internal CA of the ACME listeners.
func httpsClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatalf("no certificate in %s", caFile)
	}
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
}

func httpGet(ctx context.Context, client *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return resp, nil
}
