package fsm

import (
	"crypto/x509"
	"slices"
)

// checkSubCAPolicy validates a SubCA's policy and checks that its
// certificate carries the policy's name constraints, in a critical
// extension, so that relying parties enforce what the CA enforces.
func checkSubCAPolicy(ca *CA) error {
	if err := ca.Policy.Validate(); err != nil {
		return Errorf(CodeInvalidArgument, "SubCA %q: %v", ca.ID, err)
	}
	cert, err := x509.ParseCertificate(ca.CertDER)
	if err != nil {
		return Errorf(CodeInvalidArgument, "SubCA %q: invalid certificate: %v", ca.ID, err)
	}
	nc := &ca.Policy.NameConstraints
	var permittedIP, excludedIP []string
	for _, n := range cert.PermittedIPRanges {
		permittedIP = append(permittedIP, n.String())
	}
	for _, n := range cert.ExcludedIPRanges {
		excludedIP = append(excludedIP, n.String())
	}
	same := slices.Equal(cert.PermittedDNSDomains, nc.PermittedDNS) &&
		slices.Equal(cert.ExcludedDNSDomains, nc.ExcludedDNS) &&
		slices.Equal(permittedIP, nc.PermittedIP) && slices.Equal(excludedIP, nc.ExcludedIP) &&
		slices.Equal(cert.PermittedEmailAddresses, nc.PermittedEmail) &&
		slices.Equal(cert.ExcludedEmailAddresses, nc.ExcludedEmail) &&
		slices.Equal(cert.PermittedURIDomains, nc.PermittedURI) &&
		slices.Equal(cert.ExcludedURIDomains, nc.ExcludedURI)
	if !same {
		return Errorf(CodeInvalidArgument,
			"SubCA %q: the certificate's name constraints differ from the policy's", ca.ID)
	}
	if !nc.IsEmpty() && !cert.PermittedDNSDomainsCritical {
		return Errorf(CodeInvalidArgument,
			"SubCA %q: the name constraints extension is not critical", ca.ID)
	}
	return nil
}

// checkSignedByRoot checks that a new SubCA's certificate is a CA
// certificate with path length 0 whose signature verifies with the key of
// the chain's root.
func checkSignedByRoot(tx *Tx, chain *Chain, sub *CA) error {
	root, err := tx.CA(chain.RootCAID)
	if err != nil {
		return err
	}
	rootCert, err := root.Certificate()
	if err != nil {
		return err
	}
	cert, err := sub.Certificate()
	if err != nil {
		return Errorf(CodeInvalidArgument, "SubCA %q: %v", sub.ID, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		return Errorf(CodeInvalidArgument,
			"SubCA %q: the certificate must be a CA certificate with path length 0", sub.ID)
	}
	if err := cert.CheckSignatureFrom(rootCert); err != nil {
		return Errorf(CodeInvalidArgument, "SubCA %q: the certificate is not signed by root %q: %v",
			sub.ID, root.ID, err)
	}
	return nil
}
