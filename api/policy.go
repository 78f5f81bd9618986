package api

import (
	"time"

	anchorv1 "anchor/api/anchorv1"
	"anchor/fsm"
)

// policyFromPB converts a requested SubCA policy. The URLs are left out:
// the ca package sets them from the nodes' public URLs.
func policyFromPB(p *anchorv1.Policy) (fsm.Policy, error) {
	if p == nil {
		return fsm.Policy{}, nil
	}
	if p.MaxValiditySeconds < 0 || p.MaxValiditySeconds > maxValidityDays*24*3600 {
		return fsm.Policy{}, invalid("policy.max_validity_seconds %d is out of range: 0 to %d "+
			"(100 years)", p.MaxValiditySeconds, maxValidityDays*24*3600)
	}
	out := fsm.Policy{
		MaxValidity: time.Duration(p.MaxValiditySeconds) * time.Second,
		KeyTypes:    p.KeyTypes,
		KeyUsages:   p.KeyUsages,
		ServerAuth:  p.ServerAuth,
		ClientAuth:  p.ClientAuth,
		NameTypes:   p.NameTypes,
	}
	if s := p.Subject; s != nil {
		out.Subject = fsm.SubjectTemplate{
			Organization: s.Organization, OrganizationalUnit: s.OrganizationalUnit,
			Country: s.Country, Province: s.Province, Locality: s.Locality, CommonName: s.CommonName,
		}
	}
	if nc := p.NameConstraints; nc != nil {
		out.NameConstraints = fsm.NameConstraints{
			PermittedDNS: nc.PermittedDns, ExcludedDNS: nc.ExcludedDns,
			PermittedIP: nc.PermittedIp, ExcludedIP: nc.ExcludedIp,
			PermittedEmail: nc.PermittedEmail, ExcludedEmail: nc.ExcludedEmail,
			PermittedURI: nc.PermittedUri, ExcludedURI: nc.ExcludedUri,
		}
	}
	return out, nil
}

func policyPB(p *fsm.Policy) *anchorv1.Policy {
	s, nc := &p.Subject, &p.NameConstraints
	return &anchorv1.Policy{
		MaxValiditySeconds: int64(p.MaxValidity / time.Second),
		KeyTypes:           p.KeyTypes,
		KeyUsages:          p.KeyUsages,
		ServerAuth:         p.ServerAuth,
		ClientAuth:         p.ClientAuth,
		NameTypes:          p.NameTypes,
		Subject: &anchorv1.SubjectTemplate{
			Organization: s.Organization, OrganizationalUnit: s.OrganizationalUnit,
			Country: s.Country, Province: s.Province, Locality: s.Locality, CommonName: s.CommonName,
		},
		NameConstraints: &anchorv1.NameConstraints{
			PermittedDns: nc.PermittedDNS, ExcludedDns: nc.ExcludedDNS,
			PermittedIp: nc.PermittedIP, ExcludedIp: nc.ExcludedIP,
			PermittedEmail: nc.PermittedEmail, ExcludedEmail: nc.ExcludedEmail,
			PermittedUri: nc.PermittedURI, ExcludedUri: nc.ExcludedURI,
		},
		OcspUrls:   p.OCSPURLs,
		CrlUrls:    p.CRLURLs,
		IssuerUrls: p.IssuerURLs,
	}
}
