package api

import (
	"context"
	"strings"

	anchorv1 "anchor/api/anchorv1"
	"anchor/ca"
	"anchor/fsm"
)

// certificates implements anchorv1.CertificatesServer.
type certificates struct {
	anchorv1.UnimplementedCertificatesServer
	*Server
}

func (s *certificates) ListCertificates(ctx context.Context,
	req *anchorv1.ListCertificatesRequest) (*anchorv1.ListCertificatesResponse, error) {
	c, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	org := req.Org
	if org == "" {
		org = c.org // an organization admin lists its own organization
	}
	if org != "" && !c.allows(readAccess, org) {
		return nil, s.denyOrg(ctx, c, readAccess, org)
	}
	size, err := pageSize("page_size", req.PageSize)
	if err != nil {
		return nil, err
	}
	filter, err := certificateFilter(org, req)
	if err != nil {
		return nil, err
	}
	var out *anchorv1.ListCertificatesResponse
	err = s.view(ctx, func(tx *fsm.Tx) error {
		if err := checkFilterExists(tx, org, req); err != nil {
			return err
		}
		out, err = page(tx, filter, req.PageToken, size, func(*fsm.Certificate) bool { return true })
		return err
	})
	return out, toStatus(err)
}

// certificateFilter checks the narrowing fields of a list request and
// turns them into a filter.
func certificateFilter(org string,
	req *anchorv1.ListCertificatesRequest) (fsm.CertificateFilter, error) {
	var f fsm.CertificateFilter
	if err := checkOptionalName("org", org); err != nil {
		return f, err
	}
	names := map[string]string{"realm": req.Realm, "chain": req.Chain, "service": req.Service}
	for field, v := range names {
		if err := checkOptionalName(field, v); err != nil {
			return f, err
		}
	}
	switch {
	case req.Chain != "" && (org == "" || req.Realm == ""):
		return f, invalid("chain %q needs org and realm: a chain is named within its realm", req.Chain)
	case req.Realm != "" && org == "":
		return f, invalid("realm %q needs org: a realm is named within its organization", req.Realm)
	case req.Service != "" && org == "":
		return f, invalid("service %q needs org: a service is named within its organization", req.Service)
	}
	switch {
	case req.Chain != "":
		f.ChainID = fsm.ChainID(org, req.Realm, req.Chain)
	case req.Realm != "":
		f.ChainPrefix = org + "/" + req.Realm + "/"
	case org != "":
		f.ChainPrefix = org + "/"
	}
	if req.Service != "" {
		f.ServiceID = fsm.ServiceID(org, req.Service)
	}
	return f, nil
}

// checkFilterExists reports a named organization, realm, chain or service
// that does not exist, rather than listing nothing.
func checkFilterExists(tx *fsm.Tx, org string, req *anchorv1.ListCertificatesRequest) error {
	var err error
	switch {
	case req.Chain != "":
		_, err = lookupChain(tx, org, req.Realm, req.Chain)
	case req.Realm != "":
		_, err = lookupRealm(tx, org, req.Realm)
	case org != "":
		_, err = lookupOrg(tx, org)
	}
	if err == nil && req.Service != "" {
		_, err = lookupService(tx, org, req.Service)
	}
	return err
}

// page returns up to size certificates that pass the filter and match,
// after the certificate ID token, the token of the next page and the
// number of certificates that match. Certificate IDs grow with the log
// index that created them, and the scan comes in ID order. Only the
// returned certificates have their credentials read.
func page(tx *fsm.Tx, f fsm.CertificateFilter, token string, size int,
	match func(*fsm.Certificate) bool) (*anchorv1.ListCertificatesResponse, error) {
	out := &anchorv1.ListCertificatesResponse{}
	var credErr error
	err := tx.ScanCertificates(f, func(c *fsm.Certificate) bool {
		if !match(c) {
			return true
		}
		out.TotalSize++
		if token != "" && c.ID <= token || out.NextPageToken != "" {
			return true
		}
		if len(out.Certificates) == size {
			out.NextPageToken = out.Certificates[size-1].Id
			return true
		}
		var creds []fsm.Credential
		if creds, credErr = tx.Credentials(c.ID); credErr != nil {
			return false
		}
		out.Certificates = append(out.Certificates, certificatePB(c, creds, false))
		return true
	})
	if err == nil {
		err = credErr
	}
	return out, err
}

func (s *certificates) SearchCertificates(ctx context.Context,
	req *anchorv1.SearchCertificatesRequest) (*anchorv1.ListCertificatesResponse, error) {
	if (req.Name == "") == (req.Serial == "") {
		return nil, invalid("set exactly one of name and serial")
	}
	if req.Serial != "" {
		cert, err := s.bySerial(ctx, req.Serial, false)
		if err != nil {
			return nil, err
		}
		return &anchorv1.ListCertificatesResponse{
			Certificates: []*anchorv1.Certificate{cert}, TotalSize: 1,
		}, nil
	}
	return s.searchName(ctx, req)
}

// searchName lists the certificates with a name that contains req.Name,
// ignoring case, in the organizations the caller may read.
func (s *certificates) searchName(ctx context.Context,
	req *anchorv1.SearchCertificatesRequest) (*anchorv1.ListCertificatesResponse, error) {
	c, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if req.Org != "" && !c.allows(readAccess, req.Org) {
		return nil, s.denyOrg(ctx, c, readAccess, req.Org)
	}
	if err := checkOptionalName("org", req.Org); err != nil {
		return nil, err
	}
	size, err := pageSize("page_size", req.PageSize)
	if err != nil {
		return nil, err
	}
	query := strings.ToLower(req.Name)
	match := func(cert *fsm.Certificate) bool {
		if !c.allows(readAccess, orgOfID(cert.ChainID)) {
			return false
		}
		for _, n := range cert.Names {
			if strings.Contains(strings.ToLower(n), query) {
				return true
			}
		}
		return false
	}
	var out *anchorv1.ListCertificatesResponse
	err = s.view(ctx, func(tx *fsm.Tx) error {
		f := fsm.CertificateFilter{}
		if req.Org != "" {
			f.ChainPrefix = req.Org + "/"
		}
		out, err = page(tx, f, req.PageToken, size, match)
		return err
	})
	return out, toStatus(err)
}

func (s *certificates) GetCertificate(ctx context.Context,
	req *anchorv1.GetCertificateRequest) (*anchorv1.Certificate, error) {
	if (req.Id == "") == (req.Serial == "") {
		return nil, invalid("set exactly one of id and serial")
	}
	if req.Serial != "" {
		return s.bySerial(ctx, req.Serial, true)
	}
	if err := checkCertificateID(req.Id); err != nil {
		return nil, err
	}
	return s.byID(ctx, req.Id, true)
}

// bySerial returns the certificate that has a credential with serial,
// after checking that the caller may read its organization.
func (s *certificates) bySerial(ctx context.Context,
	serial string, withPEM bool) (*anchorv1.Certificate, error) {
	c, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	key, err := normalizeSerial(serial)
	if err != nil {
		return nil, err
	}
	var id string
	err = s.view(ctx, func(tx *fsm.Tx) error {
		cred, err := tx.Credential(key)
		if err == nil {
			id = cred.CertificateID
		}
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return s.readCertificate(ctx, c, id, withPEM)
}

func (s *certificates) byID(ctx context.Context,
	id string, withPEM bool) (*anchorv1.Certificate, error) {
	c, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.readBarrier(ctx); err != nil {
		return nil, toStatus(err)
	}
	return s.readCertificate(ctx, c, id, withPEM)
}

// readCertificate reads a certificate from the local state, which the
// caller has brought up to date, if c may read its organization.
func (s *certificates) readCertificate(ctx context.Context, c *caller, id string,
	withPEM bool) (*anchorv1.Certificate, error) {
	var cert *fsm.Certificate
	var creds []fsm.Credential
	err := s.node.State().View(func(tx *fsm.Tx) error {
		var err error
		if cert, err = tx.Certificate(id); err != nil {
			return err
		}
		creds, err = tx.Credentials(id)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if org := orgOfID(cert.ChainID); !c.allows(readAccess, org) {
		return nil, s.denyOrg(ctx, c, readAccess, org)
	}
	return certificatePB(cert, creds, withPEM), nil
}

func (s *certificates) RevokeCertificate(ctx context.Context,
	req *anchorv1.RevokeCertificateRequest) (*anchorv1.Credential, error) {
	c, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	serial, err := normalizeSerial(req.Serial)
	if err != nil {
		return nil, err
	}
	if err := checkLeafReason(req.Reason); err != nil {
		return nil, err
	}
	var cred *fsm.Credential
	err = s.view(ctx, func(tx *fsm.Tx) error {
		cred, err = tx.Credential(serial)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if org := orgOfID(cred.CAID); !c.allows(writeAccess, org) {
		return nil, s.denyOrg(ctx, c, writeAccess, org)
	}
	var revoked fsm.Credential
	cmd := fsm.MustCommand(fsm.CmdRevoke, fsm.Revoke{Serial: serial, Reason: int(req.Reason)})
	if err := s.apply(ctx, c, cmd, &revoked); err != nil {
		return nil, toStatus(err)
	}
	s.logger.Info("certificate revoked", "serial", serial, "reason", req.Reason, "caller", c.name)
	return credentialPB(&revoked, true), nil
}

// RenewCertificate signs the renewal with the SubCA key in this node's HSM.
func (s *certificates) RenewCertificate(ctx context.Context,
	req *anchorv1.RenewCertificateRequest) (*anchorv1.RenewCertificateResponse, error) {
	c, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkCertificateID(req.Id); err != nil {
		return nil, err
	}
	var cert *fsm.Certificate
	err = s.view(ctx, func(tx *fsm.Tx) error {
		cert, err = tx.Certificate(req.Id)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	if org := orgOfID(cert.ChainID); !c.allows(writeAccess, org) {
		return nil, s.denyOrg(ctx, c, writeAccess, org)
	}
	issuer := ca.NewIssuer(s.node.State(), s.applierFor(c), s.keys, s.node.ID(), s.logger)
	issued, err := issuer.Renew(ctx, req.Id)
	if err != nil {
		return nil, toStatus(err)
	}
	renewed, err := s.readCertificate(ctx, c, req.Id, false)
	if err != nil {
		return nil, err
	}
	return &anchorv1.RenewCertificateResponse{
		Certificate: renewed,
		Credential:  credentialPB(issued.Credential, true),
		ChainPem:    string(issued.ChainPEM),
	}, nil
}
