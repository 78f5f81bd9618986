package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"anchor/fsm"
)

// CeremonyResult describes the chain a ceremony created.
type CeremonyResult struct {
	ChainID string
	// Root is the AnchorCA root; its fingerprint is what relying parties compare
	// before they trust the root certificate.
	Root CeremonyCA
	// SubCAs are in the order of the specification; the first is the default.
	SubCAs []CeremonyCA
}

// CeremonyCA is one CA certificate created by a ceremony.
type CeremonyCA struct {
	ID    string // CA ID, "org/realm/chain/name"
	KeyID string // the key's ID in every node's HSM
	// CertDER is the certificate.
	CertDER []byte
	// Fingerprint is Fingerprint(CertDER).
	Fingerprint string
}

// Fingerprint returns the SHA-256 of a certificate's DER encoding as upper-case hex
// bytes separated by colons, as `openssl x509 -fingerprint -sha256` prints it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// RunCeremony creates the chain of spec: it generates the root key in this node's HSM
// (keys), self-signs the root certificate there, generates each SubCA key and signs
// each SubCA certificate with the root key, and commits the organization and realm
// when missing, the chain with its first SubCA, and the other SubCAs through apply.
// urls are the nodes' HTTP base URLs written into the certificates' AIA and CRL
// distribution points. The keys reach the other nodes through their KeyManagers.
//
// NOTE: a ceremony that fails after generating keys leaves them in the HSM and in the
// key records, unused by any CA. Nothing deletes them.
func RunCeremony(ctx context.Context, apply Applier, keys KeyStore, nodeID string,
	urls URLs, spec *CeremonySpec) (*CeremonyResult, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if err := ensureOrgAndRealm(ctx, apply, spec.Org, spec.Realm); err != nil {
		return nil, err
	}
	chainID := fsm.ChainID(spec.Org, spec.Realm, spec.Chain)
	now := time.Now().UTC().Truncate(time.Second)

	root, rootSigner, err := ceremonyRoot(ctx, apply, keys, nodeID, urls, chainID, now, spec)
	if err != nil {
		return nil, err
	}
	result := &CeremonyResult{ChainID: chainID, Root: root.result}
	for i := range spec.SubCAs {
		sub, err := ceremonySubCA(ctx, apply, keys, nodeID, urls, root, rootSigner, now,
			&spec.SubCAs[i])
		if err != nil {
			return nil, err
		}
		if i == 0 {
			err = commitChain(ctx, apply, spec, root, sub)
		} else {
			err = applyDecode(ctx, apply, fsm.MustCommand(fsm.CmdCreateSubCA,
				fsm.CreateSubCA{SubCA: sub.record}), nil)
		}
		if err != nil {
			return nil, fmt.Errorf("commit CA %s: %w", sub.result.ID, err)
		}
		result.SubCAs = append(result.SubCAs, sub.result)
	}
	return result, nil
}

// ceremonyCA is a CA made by a ceremony: its result and its record for the log.
type ceremonyCA struct {
	result CeremonyCA
	record fsm.CA
	cert   *x509.Certificate
}

func ceremonyRoot(ctx context.Context, apply Applier, keys KeyStore, nodeID string,
	urls URLs, chainID string, now time.Time, spec *CeremonySpec) (*ceremonyCA, crypto.Signer,
	error) {
	rootID := chainID + "/root"
	signer, keyID, err := newCAKey(ctx, apply, keys, nodeID, spec.Root.Algorithm)
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := caTemplate(now, days(spec.Root.ValidityDays), spec.Root.Subject.name())
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, nil, fmt.Errorf("sign root certificate of chain %s: %w", chainID, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse root certificate: %w", err)
	}
	root := &ceremonyCA{
		result: CeremonyCA{ID: rootID, KeyID: keyID, CertDER: der, Fingerprint: Fingerprint(der)},
		record: fsm.CA{Name: "root", KeyID: keyID, CertDER: der, Policy: fsm.Policy{
			OCSPURLs: urls.OCSP(), CRLURLs: urls.CRL(rootID), IssuerURLs: urls.Issuer(rootID),
		}},
		cert: cert,
	}
	return root, signer, nil
}

func ceremonySubCA(ctx context.Context, apply Applier, keys KeyStore, nodeID string,
	urls URLs, root *ceremonyCA, rootSigner crypto.Signer, now time.Time,
	spec *CeremonySubCA) (*ceremonyCA, error) {
	chainID := strings.TrimSuffix(root.result.ID, "/root")
	subID := chainID + "/" + spec.Name
	policy := subCAPolicy(spec.policy(), urls, subID)

	signer, keyID, err := newCAKey(ctx, apply, keys, nodeID, spec.Algorithm)
	if err != nil {
		return nil, err
	}
	der, err := signSubCA(root.cert, rootSigner, signer.Public(), subCASpec{
		now: now, validity: days(spec.ValidityDays), subject: spec.Subject.name(),
		policy: policy, urls: urls, rootID: root.result.ID,
	})
	if err != nil {
		return nil, err
	}
	return &ceremonyCA{
		result: CeremonyCA{ID: subID, KeyID: keyID, CertDER: der, Fingerprint: Fingerprint(der)},
		record: fsm.CA{ChainID: chainID, Name: spec.Name, KeyID: keyID, CertDER: der,
			Policy: policy},
	}, nil
}

func commitChain(ctx context.Context, apply Applier, spec *CeremonySpec, root,
	first *ceremonyCA) error {
	cmd := fsm.MustCommand(fsm.CmdCreateChain, fsm.CreateChain{
		Org: spec.Org, Realm: spec.Realm, Name: spec.Chain,
		Root: root.record, SubCA: first.record,
	})
	return applyDecode(ctx, apply, cmd, nil)
}

// ensureOrgAndRealm creates the organization and the realm unless they exist.
func ensureOrgAndRealm(ctx context.Context, apply Applier, org, realm string) error {
	commands := []*fsm.Command{
		fsm.MustCommand(fsm.CmdCreateOrganization, fsm.CreateOrganization{Name: org}),
		fsm.MustCommand(fsm.CmdCreateRealm, fsm.CreateRealm{Org: org, Name: realm}),
	}
	for _, cmd := range commands {
		err := applyDecode(ctx, apply, cmd, nil)
		if err != nil && fsm.CodeOf(err) != fsm.CodeAlreadyExists {
			return fmt.Errorf("apply %s: %w", cmd.Type, err)
		}
	}
	return nil
}
