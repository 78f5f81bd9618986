package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"time"

	"anchor/fsm"
	"anchor/hsm"
)

// Applier commits replicated commands. *cluster.Node implements it.
type Applier interface {
	Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error)
}

// Validity periods of CA certificates.
const (
	RootValidity  = 20 * 365 * 24 * time.Hour
	SubCAValidity = 10 * 365 * 24 * time.Hour
)

// ChainRequest describes a new chain: its AnchorCA root and first SubCA.
type ChainRequest struct {
	Org, Realm, Name string
	// SubCAName names the first SubCA; default "issuing".
	SubCAName string
	// RootAlgorithm and SubCAAlgorithm default to ECDSA P-384 and P-256.
	RootAlgorithm  hsm.Algorithm
	SubCAAlgorithm hsm.Algorithm
	// URLs are the nodes' HTTP base URLs written into AIA and CRL DP.
	URLs URLs
	// Policy is the first SubCA's leaf template; its URLs are filled in.
	Policy fsm.Policy
	// RootValidity and SubCAValidity default to RootValidity and
	// SubCAValidity; the SubCA certificate ends no later than the root.
	RootValidity  time.Duration
	SubCAValidity time.Duration
}

// CreateChain generates the chain's root and SubCA keys in this node's HSM,
// signs both CA certificates there, and commits the chain. The organization
// and realm must exist. A SubCA policy that fails validation is rejected
// before any key is generated.
func CreateChain(ctx context.Context, apply Applier, keys KeyStore, nodeID string,
	req ChainRequest) (*fsm.Chain, error) {
	if req.SubCAName == "" {
		req.SubCAName = "issuing"
	}
	if req.RootAlgorithm == "" {
		req.RootAlgorithm = hsm.ECDSAP384
	}
	if req.SubCAAlgorithm == "" {
		req.SubCAAlgorithm = hsm.ECDSAP256
	}
	if req.RootValidity <= 0 {
		req.RootValidity = RootValidity
	}
	for kind, name := range map[string]string{"chain": req.Name, "subca": req.SubCAName} {
		if err := fsm.ValidateName(kind, name); err != nil {
			return nil, err
		}
	}
	chainID := fsm.ChainID(req.Org, req.Realm, req.Name)
	rootID := chainID + "/root"
	subID := chainID + "/" + req.SubCAName
	policy := subCAPolicy(req.Policy, req.URLs, subID)
	if err := policy.Validate(); err != nil {
		return nil, err
	}

	// 1. The root key and its self-signed certificate.
	rootSigner, rootKeyID, err := newCAKey(ctx, apply, keys, nodeID, req.RootAlgorithm)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	rootTmpl, err := caTemplate(now, req.RootValidity,
		caSubject(req.Org, fmt.Sprintf("%s %s %s AnchorCA", req.Org, req.Realm, req.Name)))
	if err != nil {
		return nil, err
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootSigner.Public(), rootSigner)
	if err != nil {
		return nil, fmt.Errorf("sign root certificate of chain %s: %w", chainID, err)
	}
	rootCert, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, fmt.Errorf("parse root certificate: %w", err)
	}

	// 2. The SubCA key, signed by the root key in the HSM.
	subSigner, subKeyID, err := newCAKey(ctx, apply, keys, nodeID, req.SubCAAlgorithm)
	if err != nil {
		return nil, err
	}
	subDER, err := signSubCA(rootCert, rootSigner, subSigner.Public(), subCASpec{
		now: now, validity: req.SubCAValidity,
		subject: caSubject(req.Org, fmt.Sprintf("%s %s %s SubCA %s", req.Org, req.Realm, req.Name,
			req.SubCAName)),
		policy: policy, urls: req.URLs, rootID: rootID,
	})
	if err != nil {
		return nil, err
	}

	// 3. The chain record, with the SubCA's policy pointing at this cluster.
	cmd := fsm.MustCommand(fsm.CmdCreateChain, fsm.CreateChain{
		Org: req.Org, Realm: req.Realm, Name: req.Name,
		Root: fsm.CA{Name: "root", KeyID: rootKeyID, CertDER: rootDER, Policy: fsm.Policy{
			OCSPURLs: req.URLs.OCSP(), CRLURLs: req.URLs.CRL(rootID), IssuerURLs: req.URLs.Issuer(rootID),
		}},
		SubCA: fsm.CA{Name: req.SubCAName, KeyID: subKeyID, CertDER: subDER, Policy: policy},
	})
	var chain fsm.Chain
	if err := applyDecode(ctx, apply, cmd, &chain); err != nil {
		return nil, err
	}
	return &chain, nil
}

// newCAKey generates a CA key in the HSM and records its public half in the
// replicated state, so that other nodes can receive and verify it.
func newCAKey(ctx context.Context, apply Applier, keys KeyStore, nodeID string,
	alg hsm.Algorithm) (crypto.Signer, string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", fmt.Errorf("read key ID randomness: %w", err)
	}
	id := "ca-" + hex.EncodeToString(b[:])
	signer, err := keys.GenerateKey(id, alg)
	if err != nil {
		return nil, "", fmt.Errorf("generate %s CA key in HSM: %w", alg, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, "", fmt.Errorf("encode public key of %s: %w", id, err)
	}
	cmd := fsm.MustCommand(fsm.CmdCreateKey, fsm.Key{
		ID: id, Algorithm: string(alg), PublicKey: pub, Origin: nodeID,
	})
	if err := applyDecode(ctx, apply, cmd, nil); err != nil {
		return nil, "", fmt.Errorf("record CA key %s: %w", id, err)
	}
	return signer, id, nil
}

func caTemplate(now time.Time, validity time.Duration, subject pkix.Name) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil
}

// applyDecode commits cmd and decodes its result into v (nil to discard).
func applyDecode(ctx context.Context, apply Applier, cmd *fsm.Command, v any) error {
	res, err := apply.Apply(ctx, cmd)
	if err != nil {
		return err
	}
	return res.Decode(v)
}

// ActorApplier commits commands through Applier with Actor as their actor,
// so that the commands built inside this package (key.create, chain.create,
// credential.issue, ...) enter the audit trail under the caller's name.
type ActorApplier struct {
	Applier Applier
	Actor   string
}

// Apply stamps cmd with the actor and commits it.
func (a ActorApplier) Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	return a.Applier.Apply(ctx, cmd.WithActor(a.Actor))
}
