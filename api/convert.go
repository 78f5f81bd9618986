package api

import (
	"crypto/x509"
	"encoding/pem"
	"time"

	anchorv1 "anchor/api/anchorv1"
	"anchor/fsm"
)

// timestamp formats t as RFC 3339 in UTC, or "" for the zero time.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func certificatePEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func organizationPB(o *fsm.Organization) *anchorv1.Organization {
	return &anchorv1.Organization{Name: o.Name, CreatedAt: timestamp(o.CreatedAt)}
}

func realmPB(r *fsm.Realm) *anchorv1.Realm {
	return &anchorv1.Realm{Org: r.Org, Name: r.Name, CreatedAt: timestamp(r.CreatedAt)}
}

func memberPB(m *fsm.Member) *anchorv1.OrganizationMember {
	return &anchorv1.OrganizationMember{
		Org: m.Org, Identity: m.Identity, Role: string(m.Role),
		AddedAt: timestamp(m.AddedAt), UpdatedAt: timestamp(m.UpdatedAt),
	}
}

// caPB describes a CA with its certificate, the nodes holding its key and,
// for a SubCA, its revocation.
func caPB(tx *fsm.Tx, c *fsm.CA) (*anchorv1.CA, error) {
	cert, err := x509.ParseCertificate(c.CertDER)
	if err != nil {
		return nil, fsm.Errorf(fsm.CodeInternal, "CA %s has an unreadable certificate: %v", c.ID, err)
	}
	out := &anchorv1.CA{
		Id: c.ID, Name: c.Name, Kind: c.Kind, KeyId: c.KeyID,
		CertificatePem: certificatePEM(c.CertDER),
		Subject:        cert.Subject.String(),
		Serial:         fsm.SerialKey(cert.SerialNumber),
		NotBefore:      timestamp(cert.NotBefore),
		NotAfter:       timestamp(cert.NotAfter),
		IssuerId:       c.IssuerID,
		Policy:         policyPB(&c.Policy),
	}
	if key, err := tx.Key(c.KeyID); err == nil {
		out.Holders = key.Holders
	}
	rev, err := tx.CARevocation(c.ID)
	switch {
	case err == nil:
		out.Revoked, out.RevokedAt = true, timestamp(rev.RevokedAt)
		out.RevocationReason = int32(rev.Reason)
	case !fsm.IsNotFound(err):
		return nil, err
	}
	return out, nil
}

// chainPB describes a chain with its root and SubCAs.
func chainPB(tx *fsm.Tx, c *fsm.Chain) (*anchorv1.Chain, error) {
	out := &anchorv1.Chain{
		Id: c.ID, Org: c.Org, Realm: c.Realm, Name: c.Name,
		DefaultSubcaId: c.DefaultSubCAID, CreatedAt: timestamp(c.CreatedAt),
	}
	root, err := tx.CA(c.RootCAID)
	if err != nil {
		return nil, err
	}
	if out.Root, err = caPB(tx, root); err != nil {
		return nil, err
	}
	if out.Subcas, err = subCAsPB(tx, c); err != nil {
		return nil, err
	}
	return out, nil
}

func subCAsPB(tx *fsm.Tx, c *fsm.Chain) ([]*anchorv1.CA, error) {
	out := make([]*anchorv1.CA, 0, len(c.SubCAIDs))
	for _, id := range c.SubCAIDs {
		sub, err := tx.CA(id)
		if err != nil {
			return nil, err
		}
		pb, err := caPB(tx, sub)
		if err != nil {
			return nil, err
		}
		out = append(out, pb)
	}
	return out, nil
}

func servicePB(s *fsm.Service) *anchorv1.Service {
	out := &anchorv1.Service{
		Id: s.ID, Org: s.Org, Name: s.Name, Identifiers: s.Identifiers,
		CreatedAt: timestamp(s.CreatedAt),
	}
	for _, r := range s.Realms {
		out.Realms = append(out.Realms, &anchorv1.ServiceRealm{
			Realm: r.Realm, ChainId: r.ChainID, SubcaId: r.SubCAID, EabKeyIds: r.EABKeyIDs,
		})
	}
	return out
}

// eabKeyPB describes an EAB key without its HMAC key.
func eabKeyPB(k *fsm.EABKey) *anchorv1.EABKey {
	return &anchorv1.EABKey{
		KeyId: k.KeyID, ChainId: k.ChainID, SubcaId: k.SubCAID, ServiceId: k.ServiceID,
		Identifiers: k.Identifiers, CreatedAt: timestamp(k.CreatedAt), AccountId: k.AccountID,
	}
}

// credentialPB describes a credential, with its PEM when withPEM is set.
func credentialPB(c *fsm.Credential, withPEM bool) *anchorv1.Credential {
	out := &anchorv1.Credential{
		Serial: c.Serial, CertificateId: c.CertificateID, CaId: c.CAID,
		NotBefore: timestamp(c.NotBefore), NotAfter: timestamp(c.NotAfter),
		IssuedAt: timestamp(c.IssuedAt), OrderId: c.OrderID,
		Revoked: c.Revoked, RevokedAt: timestamp(c.RevokedAt), Reason: int32(c.Reason),
	}
	if withPEM {
		out.CertificatePem = certificatePEM(c.DER)
	}
	return out
}

func certificatePB(c *fsm.Certificate,
	creds []fsm.Credential, withPEM bool) *anchorv1.Certificate {
	out := &anchorv1.Certificate{
		Id: c.ID, ChainId: c.ChainID, CaId: c.CAID, Names: c.Names, KeyPairId: c.KeyPairID,
		ServiceId: c.ServiceID, CreatedAt: timestamp(c.CreatedAt),
	}
	for i := range creds {
		out.Credentials = append(out.Credentials, credentialPB(&creds[i], withPEM))
	}
	return out
}

func crlPB(c *fsm.CRL) *anchorv1.CRL {
	out := &anchorv1.CRL{
		CaId: c.CAID, Delta: c.Delta, Sharded: c.Sharded, Shard: int32(c.Shard),
		Number: c.Number, SourceIndex: c.SourceIndex, Entries: int32(c.Entries),
		ThisUpdate: timestamp(c.ThisUpdate), NextUpdate: timestamp(c.NextUpdate), Der: c.DER,
	}
	if c.Base != nil {
		out.BaseNumber = c.Base.Number
	}
	return out
}

func auditEventPB(e *fsm.AuditEvent) *anchorv1.AuditEvent {
	return &anchorv1.AuditEvent{
		Index: e.Index, Time: timestamp(e.Time), Actor: e.Actor, Type: string(e.Type),
		Target: e.Target, Outcome: e.Outcome, Error: e.Error,
	}
}
