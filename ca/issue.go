package ca

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"anchor/crl"
	"anchor/fsm"
)

// Issuer signs leaf certificates with the SubCA keys in this node's HSM.
type Issuer struct {
	state  *fsm.FSM
	apply  Applier
	keys   KeyStore
	nodeID string
	logger *slog.Logger
}

// NewIssuer returns an Issuer of node nodeID that reads CAs from state,
// signs with keys and commits credentials through apply. It signs only with
// keys that the node has proved to hold (see HeldSigner).
func NewIssuer(state *fsm.FSM, apply Applier, keys KeyStore, nodeID string, logger *slog.Logger) *Issuer {
	return &Issuer{state: state, apply: apply, keys: keys, nodeID: nodeID, logger: logger}
}

// Request describes a leaf certificate to issue under a SubCA of a chain.
type Request struct {
	ChainID string
	CSR     *x509.CertificateRequest
	// OrderID binds the certificate to an ACME order; the commit fails unless
	// the order is processing, which makes finalize exactly-once.
	OrderID string
	// SubCAID is the ID of the signing SubCA ("org/realm/chain/name"). Empty
	// means the SubCA of the reissued certificate, else the service's SubCA
	// in the chain's realm, else the chain's default SubCA.
	SubCAID string
	// ServiceID restricts the names to the service's identifiers and the
	// SubCA to the one the service uses in the chain's realm.
	ServiceID string
	// CertificateID makes the credential a reissue of that certificate: the
	// same SubCA and names, with the CSR's key, which may be new.
	CertificateID string
	// NotBefore and NotAfter request a validity period; zero values mean a
	// minute ago and the policy's maximum. A requested period must fit the
	// policy's max_validity and the SubCA certificate's validity.
	NotBefore time.Time
	NotAfter  time.Time
	// Actor names who asked for the certificate in the audit trail, such as
	// "acme-account:ID"; empty records this node as "node:ID".
	Actor string

	// verifiedCSR is the CSR whose signature Check or Issue verified, so
	// that Issue after Check verifies it once. Assigning another CSR to
	// the request makes them verify that one. NOTE: the comparison is by
	// pointer, so a CSR changed in place after Check is not verified again.
	verifiedCSR *x509.CertificateRequest
}

// Issued is a committed leaf certificate.
type Issued struct {
	Credential *fsm.Credential
	// ChainPEM is the leaf followed by its SubCA, PEM encoded.
	ChainPEM []byte
}

// issuing is the SubCA a leaf is signed under and the objects the request
// names, read from one state transaction.
type issuing struct {
	chain       *fsm.Chain
	sub         *fsm.CA
	subCert     *x509.Certificate
	service     *fsm.Service     // nil without a service
	certificate *fsm.Certificate // the reissued or renewed certificate, or nil
	crlShards   int              // CRL shards of the SubCA
}

// Issue checks the request against the SubCA's policy, signs the certificate
// in the HSM and commits it. The certificate is returned only after the
// commit, which also reserves its serial across the cluster. A rejected
// request writes nothing to the log.
func (i *Issuer) Issue(ctx context.Context, req *Request) (*Issued, error) {
	leaf, target, err := i.resolve(req)
	if err != nil {
		return nil, err
	}
	return i.issueLeaf(ctx, target, leaf, req.OrderID, req.Actor)
}

// Check runs every check of Issue on req against the current state without
// signing or committing. A caller that changes state of its own before
// Issue, such as an ACME order moving to processing, can reject a request
// first. Issue checks again, because the state may change in between.
// Check and Issue record in req that its CSR's signature verified, so a
// Request is for one goroutine at a time.
func (i *Issuer) Check(req *Request) error {
	leaf, target, err := i.resolve(req)
	if err != nil {
		return err
	}
	_, _, _, err = checkLeaf(target, leaf)
	return err
}

// resolve reads the CSR of req and loads the SubCA and what req names.
func (i *Issuer) resolve(req *Request) (*leafRequest, *issuing, error) {
	// 1. Check the CSR's signature and read its key and names.
	leaf, err := leafFromCSR(req)
	if err != nil {
		return nil, nil, err
	}

	// 2. Load the SubCA and what the request names, with the SubCA's CRL
	// shard count, and refuse a revoked SubCA.
	var target *issuing
	err = i.state.View(func(tx *fsm.Tx) error {
		if target, err = resolveRequest(tx, req); err != nil {
			return err
		}
		if rev, err := tx.CARevocation(target.sub.ID); err == nil && rev != nil {
			return fsm.Errorf(fsm.CodeFailedPrecondition, "SubCA %s is revoked", target.sub.ID)
		}
		target.crlShards, err = tx.CRLShards(target.sub.ID)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if c := target.certificate; c != nil && !slices.Equal(leaf.names, c.Names) {
		return nil, nil, fsm.Errorf(fsm.CodeInvalidArgument,
			"reissue of certificate %s must request its names %v, not %v", c.ID, c.Names, leaf.names)
	}
	return leaf, target, nil
}

func leafFromCSR(req *Request) (*leafRequest, error) {
	if req.CSR == nil {
		return nil, fsm.Errorf(fsm.CodeInvalidArgument, "request has no CSR")
	}
	if req.verifiedCSR != req.CSR {
		if err := req.CSR.CheckSignature(); err != nil {
			return nil, fsm.Errorf(fsm.CodeInvalidArgument, "CSR signature does not verify: %v", err)
		}
		req.verifiedCSR = req.CSR
	}
	if _, err := fsm.KeyType(req.CSR.PublicKey); err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(req.CSR.PublicKey)
	if err != nil {
		return nil, fsm.Errorf(fsm.CodeInvalidArgument, "unsupported CSR public key: %v", err)
	}
	names, cn, err := csrNames(req.CSR)
	if err != nil {
		return nil, err
	}
	return &leafRequest{
		publicKey: req.CSR.PublicKey, spki: spki, names: names, commonName: cn,
		notBefore: req.NotBefore, notAfter: req.NotAfter,
	}, nil
}

// resolveRequest finds the SubCA of a request (see Request.SubCAID) and
// loads the service and certificate it names.
func resolveRequest(tx *fsm.Tx, req *Request) (*issuing, error) {
	chain, err := tx.Chain(req.ChainID)
	if err != nil {
		return nil, err
	}
	t := &issuing{chain: chain}
	serviceID, subID := req.ServiceID, req.SubCAID
	if req.CertificateID != "" {
		if t.certificate, err = tx.Certificate(req.CertificateID); err != nil {
			return nil, err
		}
		if t.certificate.ChainID != chain.ID {
			return nil, fsm.Errorf(fsm.CodeInvalidArgument, "certificate %s belongs to chain %s, not %s",
				req.CertificateID, t.certificate.ChainID, chain.ID)
		}
		if subID != "" && subID != t.certificate.CAID {
			return nil, fsm.Errorf(fsm.CodeInvalidArgument,
				"reissue of certificate %s must use its SubCA %s", req.CertificateID, t.certificate.CAID)
		}
		subID = t.certificate.CAID
		if serviceID == "" {
			serviceID = t.certificate.ServiceID
		}
	}
	if serviceID != "" {
		if t.service, err = tx.Service(serviceID); err != nil {
			return nil, err
		}
	}
	if err := t.loadSubCA(tx, SigningSubCA(chain, t.service, subID)); err != nil {
		return nil, err
	}
	return t, nil
}

// SigningSubCA returns the ID of the SubCA that signs a leaf of chain:
// subID when set, else the SubCA that service (which may be nil) binds in
// the chain's realm, else the chain's default SubCA.
func SigningSubCA(chain *fsm.Chain, service *fsm.Service, subID string) string {
	if subID != "" {
		return subID
	}
	if service != nil {
		if b := service.Realm(chain.Realm); b != nil {
			return b.SubCAID
		}
	}
	return chain.DefaultSubCAID
}

func (t *issuing) loadSubCA(tx *fsm.Tx, subID string) error {
	sub, err := tx.CA(subID)
	if err != nil {
		return err
	}
	if sub.Kind != fsm.CAKindSub || sub.ChainID != t.chain.ID {
		return fsm.Errorf(fsm.CodeInvalidArgument, "CA %s is not a SubCA of chain %s", subID, t.chain.ID)
	}
	cert, err := sub.Certificate()
	if err != nil {
		return err
	}
	t.sub, t.subCert = sub, cert
	return nil
}

// issueLeaf checks a leaf request against the SubCA's template and the
// service, signs the certificate and commits it.
//
// The checks, the signature and the commit stay in one function so that
// their order reads top to bottom: nothing is signed before every check
// passed, and nothing is returned before the commit reserved the serial.
func (i *Issuer) issueLeaf(ctx context.Context, t *issuing, leaf *leafRequest,
	orderID, actor string) (*Issued, error) {
	if actor == "" {
		actor = "node:" + i.nodeID
	}
	// 1. The SubCA's template and the service's identifiers.
	usage, notBefore, notAfter, err := checkLeaf(t, leaf)
	if err != nil {
		return nil, err
	}

	// 2. The certificate template and this node's SubCA key.
	tmpl, err := leafTemplate(t.sub, leaf, usage, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	signer, err := HeldSigner(i.state, i.keys, i.nodeID, t.sub.KeyID)
	if err != nil {
		return nil, fsm.Errorf(fsm.CodeUnavailable,
			"this node cannot sign for SubCA %s yet: %v", t.sub.ID, err)
	}
	payload := fsm.IssueCredential{
		ChainID: t.chain.ID, CAID: t.sub.ID, Names: leaf.names,
		KeyPairID: fsm.KeyPairID(leaf.spki), PublicKey: leaf.spki, OrderID: orderID,
	}
	if t.certificate != nil {
		payload.CertificateID = t.certificate.ID
	}
	if t.service != nil {
		payload.ServiceID = t.service.ID
	}

	// 3. Sign, then commit. A serial collision (astronomically unlikely)
	// is rejected by the log and retried with a fresh serial.
	for attempt := 0; ; attempt++ {
		if err := setCRLLocations(tmpl, t.sub, t.crlShards); err != nil {
			return nil, err
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, t.subCert, leaf.publicKey, signer)
		if err != nil {
			return nil, fmt.Errorf("sign certificate with SubCA %s: %w", t.sub.ID, err)
		}
		payload.DER = der
		var cred fsm.Credential
		cmd := fsm.MustCommand(fsm.CmdIssueCredential, payload).WithActor(actor)
		err = applyDecode(ctx, i.apply, cmd, &cred)
		if fsm.CodeOf(err) == fsm.CodeAlreadyExists && attempt < 3 {
			if tmpl.SerialNumber, err = newSerial(); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		i.logger.Info("certificate issued", "serial", cred.Serial, "ca", t.sub.ID,
			"certificate", cred.CertificateID, "names", leaf.names, "order", orderID,
			"service", payload.ServiceID)
		return &Issued{Credential: &cred, ChainPEM: chainPEM(der, t.sub.CertDER)}, nil
	}
}

// checkLeaf checks a leaf request against the SubCA's template and the
// service, and returns the leaf's key usage and validity.
func checkLeaf(t *issuing, leaf *leafRequest) (x509.KeyUsage, time.Time, time.Time, error) {
	usage, err := checkTemplate(t.sub, leaf)
	if err != nil {
		return 0, time.Time{}, time.Time{}, err
	}
	if t.service != nil {
		if err := checkService(t.service, t.chain, t.sub, leaf.names); err != nil {
			return 0, time.Time{}, time.Time{}, err
		}
	}
	notBefore, notAfter, err := leafValidity(t.sub, t.subCert, leaf, time.Now().UTC())
	if err != nil {
		return 0, time.Time{}, time.Time{}, err
	}
	return usage, notBefore, notAfter, nil
}

// setCRLLocations points the leaf's CRL distribution point at the CRL shard
// its serial falls in, and its freshest CRL extension at that shard's delta
// CRL. It runs again whenever the serial is redrawn.
func setCRLLocations(tmpl *x509.Certificate, sub *fsm.CA, shards int) error {
	tmpl.CRLDistributionPoints = crl.ShardURLs(sub.Policy.CRLURLs, crl.ShardOf(tmpl.SerialNumber, shards))
	tmpl.ExtraExtensions = slices.DeleteFunc(tmpl.ExtraExtensions, func(e pkix.Extension) bool {
		return e.Id.Equal(crl.OIDFreshestCRL)
	})
	if len(tmpl.CRLDistributionPoints) == 0 {
		return nil
	}
	ext, err := crl.FreshestCRLExtension(crl.DeltaURLs(tmpl.CRLDistributionPoints))
	if err != nil {
		return fmt.Errorf("encode freshest CRL extension: %w", err)
	}
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, ext)
	return nil
}

func leafTemplate(sub *fsm.CA, leaf *leafRequest, usage x509.KeyUsage,
	notBefore, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(leaf.spki)
	if err != nil {
		return nil, err
	}
	p := &sub.Policy
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               leafSubject(&p.Subject, leaf),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              usage,
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
		OCSPServer:            p.OCSPURLs,
		IssuingCertificateURL: p.IssuerURLs,
		CRLDistributionPoints: p.CRLURLs,
	}
	if p.ServerAuth {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if p.ClientAuth {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	setNames(tmpl, leaf.names)
	return tmpl, nil
}

// leafSubject copies the template's attributes and adds the common name
// that the template's rule selects.
func leafSubject(s *fsm.SubjectTemplate, leaf *leafRequest) pkix.Name {
	one := func(v string) []string {
		if v == "" {
			return nil
		}
		return []string{v}
	}
	return pkix.Name{
		Country:            one(s.Country),
		Province:           one(s.Province),
		Locality:           one(s.Locality),
		Organization:       one(s.Organization),
		OrganizationalUnit: one(s.OrganizationalUnit),
		CommonName:         leafCommonName(s.CommonName, leaf.commonName, leaf.names),
	}
}

// subjectKeyID is the SHA-1 of the subjectPublicKey bits (RFC 5280, 4.2.1.2,
// method 1).
func subjectKeyID(spki []byte) ([]byte, error) {
	bits, err := fsm.SubjectPublicKeyBits(spki)
	if err != nil {
		return nil, fsm.Errorf(fsm.CodeInvalidArgument, "unsupported public key: %v", err)
	}
	sum := sha1.Sum(bits)
	return sum[:], nil
}

func chainPEM(leaf, issuer []byte) []byte {
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuer})...)
}
