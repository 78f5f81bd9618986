package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"time"

	"anchor/fsm"
	"anchor/hsm"
)

// StateApplier commits commands and reads the local replicated state.
// *cluster.Node implements it.
type StateApplier interface {
	Applier
	State() *fsm.FSM
}

// SubCARequest describes a new SubCA of an existing chain.
type SubCARequest struct {
	ChainID string
	Name    string
	// Algorithm of the SubCA key; default ECDSA P-256.
	Algorithm hsm.Algorithm
	// Validity of the SubCA certificate; default SubCAValidity. It ends no
	// later than the root certificate.
	Validity time.Duration
	// URLs are the nodes' HTTP base URLs written into AIA and CRL DP.
	URLs URLs
	// Policy is the SubCA's leaf template; its URLs are filled in.
	Policy fsm.Policy
	// MakeDefault makes the SubCA the chain's default, which signs ACME
	// orders that name no SubCA.
	MakeDefault bool
}

// CreateSubCA generates a SubCA key in this node's HSM, signs the SubCA
// certificate with the chain's root key in the same HSM, and commits the
// SubCA. The node must hold the root key. A policy that fails validation is
// rejected before any key is generated.
func CreateSubCA(ctx context.Context, c StateApplier, keys KeyStore, nodeID string,
	req SubCARequest) (*fsm.CA, error) {
	if err := fsm.ValidateName("subca", req.Name); err != nil {
		return nil, err
	}
	if req.Algorithm == "" {
		req.Algorithm = hsm.ECDSAP256
	}
	subID := req.ChainID + "/" + req.Name
	policy := subCAPolicy(req.Policy, req.URLs, subID)
	if err := policy.Validate(); err != nil {
		return nil, err
	}

	// 1. The chain's root, whose key must be in this node's HSM.
	chain, root, err := readRoot(c.State(), req.ChainID, subID)
	if err != nil {
		return nil, err
	}
	rootCert, err := root.Certificate()
	if err != nil {
		return nil, err
	}
	rootSigner, err := keys.Signer(root.KeyID)
	if err != nil {
		return nil, fsm.Errorf(fsm.CodeUnavailable,
			"this node cannot sign for root %s yet: %v", root.ID, err)
	}

	// 2. The SubCA key and its certificate, signed by the root key.
	subSigner, subKeyID, err := newCAKey(ctx, c, keys, nodeID, req.Algorithm)
	if err != nil {
		return nil, err
	}
	subDER, err := signSubCA(rootCert, rootSigner, subSigner.Public(), subCASpec{
		now: time.Now().UTC().Truncate(time.Second), validity: req.Validity,
		subject: caSubject(chain.Org, fmt.Sprintf("%s %s %s SubCA %s", chain.Org, chain.Realm,
			chain.Name, req.Name)),
		policy: policy, urls: req.URLs, rootID: root.ID,
	})
	if err != nil {
		return nil, err
	}

	// 3. The SubCA record; the log checks the signature and constraints again.
	cmd := fsm.MustCommand(fsm.CmdCreateSubCA, fsm.CreateSubCA{
		SubCA: fsm.CA{
			ChainID: chain.ID, Name: req.Name, KeyID: subKeyID, CertDER: subDER, Policy: policy,
		},
		MakeDefault: req.MakeDefault,
	})
	var sub fsm.CA
	if err := applyDecode(ctx, c, cmd, &sub); err != nil {
		return nil, err
	}
	return &sub, nil
}

func readRoot(state *fsm.FSM, chainID, subID string) (*fsm.Chain, *fsm.CA, error) {
	var chain *fsm.Chain
	var root *fsm.CA
	err := state.View(func(tx *fsm.Tx) error {
		var err error
		if chain, err = tx.Chain(chainID); err != nil {
			return err
		}
		if _, err := tx.CA(subID); err == nil {
			return fsm.Errorf(fsm.CodeAlreadyExists, "CA %q already exists", subID)
		}
		root, err = tx.CA(chain.RootCAID)
		return err
	})
	return chain, root, err
}

// subCAPolicy completes a SubCA's policy: this cluster's URLs, and the
// serverAuth extended key usage when the policy selects none.
func subCAPolicy(p fsm.Policy, urls URLs, subID string) fsm.Policy {
	p.OCSPURLs = urls.OCSP()
	p.CRLURLs = urls.CRL(subID)
	p.IssuerURLs = urls.Issuer(subID)
	if !p.ServerAuth && !p.ClientAuth {
		p.ServerAuth = true
	}
	return p
}

// subCASpec holds the inputs of a SubCA certificate other than the keys.
type subCASpec struct {
	now      time.Time
	validity time.Duration // zero means SubCAValidity
	subject  pkix.Name
	policy   fsm.Policy
	urls     URLs
	rootID   string
}

// signSubCA signs a SubCA certificate with the root key. The certificate
// has path length 0, the extended key usages of its policy and the root's
// AIA and CRL URLs. The policy's name constraints go into an extension
// marked critical, as RFC 5280, 4.2.1.10 requires.
func signSubCA(root *x509.Certificate, rootSigner crypto.Signer, pub crypto.PublicKey,
	s subCASpec) ([]byte, error) {
	if s.validity <= 0 {
		s.validity = SubCAValidity
	}
	tmpl, err := caTemplate(s.now, s.validity, s.subject)
	if err != nil {
		return nil, err
	}
	tmpl.MaxPathLen = 0
	tmpl.MaxPathLenZero = true
	if s.policy.ServerAuth {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if s.policy.ClientAuth {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	tmpl.OCSPServer = s.urls.OCSP()
	tmpl.IssuingCertificateURL = s.urls.Issuer(s.rootID)
	tmpl.CRLDistributionPoints = s.urls.CRL(s.rootID)
	if err := setNameConstraints(tmpl, &s.policy.NameConstraints); err != nil {
		return nil, err
	}
	if tmpl.NotAfter.After(root.NotAfter) {
		tmpl.NotAfter = root.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, pub, rootSigner)
	if err != nil {
		return nil, fmt.Errorf("sign SubCA certificate %q: %w", s.subject.CommonName, err)
	}
	return der, nil
}

func setNameConstraints(tmpl *x509.Certificate, nc *fsm.NameConstraints) error {
	if nc.IsEmpty() {
		return nil
	}
	tmpl.PermittedDNSDomainsCritical = true
	tmpl.PermittedDNSDomains = nc.PermittedDNS
	tmpl.ExcludedDNSDomains = nc.ExcludedDNS
	tmpl.PermittedEmailAddresses = nc.PermittedEmail
	tmpl.ExcludedEmailAddresses = nc.ExcludedEmail
	tmpl.PermittedURIDomains = nc.PermittedURI
	tmpl.ExcludedURIDomains = nc.ExcludedURI
	var err error
	if tmpl.PermittedIPRanges, err = ipNets(nc.PermittedIP); err != nil {
		return err
	}
	tmpl.ExcludedIPRanges, err = ipNets(nc.ExcludedIP)
	return err
}

func ipNets(prefixes []string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, p := range prefixes {
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return nil, fsm.Errorf(fsm.CodeInvalidArgument, "invalid IP prefix %q: %v", p, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// caSubject names a CA: the organization and a common name cut to the
// 64-character upper bound of X.520.
//
// NOTE: two long names that share their first 64 characters give two CAs
// the same subject; keep chain and SubCA names short.
func caSubject(org, commonName string) pkix.Name {
	if len(commonName) > 64 {
		commonName = commonName[:64]
	}
	return pkix.Name{Organization: []string{org}, CommonName: commonName}
}
