package crl

import (
	"encoding/asn1"
	"strings"
	"testing"

	"anchor/fsm"
)

// tbsElements splits the tbsCertList of a CRL into its top-level elements.
func tbsElements(t *testing.T, der []byte) []asn1.RawValue {
	t.Helper()
	var certList struct {
		TBS       asn1.RawValue
		Algorithm asn1.RawValue
		Signature asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &certList); err != nil {
		t.Fatalf("parse CRL: %v", err)
	}
	var elems []asn1.RawValue
	for rest := certList.TBS.Bytes; len(rest) > 0; {
		var v asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &v); err != nil {
			t.Fatalf("parse tbsCertList: %v", err)
		}
		elems = append(elems, v)
	}
	return elems
}

func TestSignCRL_EmptyOmitsRevokedCertificates(t *testing.T) {
	p := newTestPKI(t)
	p.startPublisher(PublisherOptions{})
	crl := p.waitCRL(rootID, "exists", func(*fsm.CRL) bool { return true })

	// version, signature, issuer, thisUpdate, nextUpdate, [0] crlExtensions
	elems := tbsElements(t, crl.DER)
	if len(elems) != 6 {
		t.Fatalf("tbsCertList has %d elements, want 6", len(elems))
	}
	if elems[5].Class != asn1.ClassContextSpecific || elems[5].Tag != 0 {
		t.Errorf("element after nextUpdate has class %d tag %d, want crlExtensions [0]",
			elems[5].Class, elems[5].Tag)
	}
	out, err := openssl(t, "crl", "-in", p.fetchCRL(rootID), "-noout", "-text")
	if err != nil {
		t.Fatalf("openssl crl -text: %v\n%s", err, out)
	}
	if !strings.Contains(out, "No Revoked Certificates") {
		t.Errorf("openssl lists revoked certificates in an empty CRL\n%s", out)
	}
}

func TestSignCRL_NonEmptyHasRevokedCertificates(t *testing.T) {
	p := newTestPKI(t)
	leaf := p.issueLeaf("leaf.example.net")
	p.revoke(leaf, 1)
	p.startPublisher(PublisherOptions{})
	crl := p.waitCRL(subID, "lists the leaf", func(c *fsm.CRL) bool { return hasSerial(c, leaf) })

	elems := tbsElements(t, crl.DER)
	if len(elems) != 7 {
		t.Fatalf("tbsCertList has %d elements, want 7", len(elems))
	}
	if elems[5].Class != asn1.ClassUniversal || elems[5].Tag != asn1.TagSequence {
		t.Errorf("element after nextUpdate has class %d tag %d, want a SEQUENCE",
			elems[5].Class, elems[5].Tag)
	}
}

func TestParsePath_Layout(t *testing.T) {
	cases := []struct {
		path  string
		scope fsm.CRLScope
		delta bool
	}{
		{"/crl/acme/prod/web/sub1.crl", fsm.FullScope(subID), false},
		{"/crl/acme/prod/web/sub1.delta.crl", fsm.FullScope(subID), true},
		{"/crl/acme/prod/web/sub1/3.crl", fsm.ShardScope(subID, 3), false},
		{"/crl/acme/prod/web/sub1/15.delta.crl", fsm.ShardScope(subID, 15), true},
	}
	for _, c := range cases {
		scope, delta, ok := parsePath(c.path)
		if !ok || scope != c.scope || delta != c.delta {
			t.Errorf("parsePath(%q) = %v, %v, %v, want %v, %v, true",
				c.path, scope, delta, ok, c.scope, c.delta)
		}
	}
	for _, path := range []string{
		"/crl/.crl", "/crl/acme.crl", "/crl/acme/prod/web.crl", "/ocsp/acme/prod/web/sub1.crl",
		"/crl/acme/prod/web/sub1/03.crl", "/crl/acme/prod/web/sub1/x.crl",
		"/crl/acme/prod/web/sub1/-1.crl", "/crl/acme/prod//sub1.crl",
		"/crl/acme/prod/web/sub1/3/4.crl",
	} {
		if scope, _, ok := parsePath(path); ok {
			t.Errorf("parsePath(%q) = %v, want no match", path, scope)
		}
	}
}

func TestURL_MatchesParsePath(t *testing.T) {
	base := "http://pki.example.net:8080/"
	full := URL(base, subID)
	if want := "http://pki.example.net:8080/crl/acme/prod/web/sub1.crl"; full != want {
		t.Errorf("URL = %q, want %q", full, want)
	}
	shard := ShardURL(base, subID, 7)
	if got := ShardURLs([]string{full}, 7); len(got) != 1 || got[0] != shard {
		t.Errorf("ShardURLs of %q = %v, want [%s]", full, got, shard)
	}
	if want := "http://pki.example.net:8080/crl/acme/prod/web/sub1/7.delta.crl"; DeltaURLs(
		[]string{shard})[0] != want {
		t.Errorf("DeltaURLs of %q = %v, want %s", shard, DeltaURLs([]string{shard}), want)
	}
}
