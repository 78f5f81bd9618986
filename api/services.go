package api

import (
	"context"
	"encoding/base64"

	anchorv1 "anchor/api/anchorv1"
	"anchor/ca"
	"anchor/fsm"
)

// services implements anchorv1.ServicesServer.
type services struct {
	anchorv1.UnimplementedServicesServer
	*Server
}

func (s *services) CreateService(ctx context.Context,
	req *anchorv1.CreateServiceRequest) (*anchorv1.CreateServiceResponse, error) {
	c, err := s.authorize(ctx, writeAccess, req.Org)
	if err != nil {
		return nil, err
	}
	svcReq, err := serviceRequest(req)
	if err != nil {
		return nil, err
	}
	err = s.view(ctx, func(tx *fsm.Tx) error {
		for _, r := range svcReq.Realms {
			if _, err := lookupChain(tx, req.Org, r.Realm, r.Chain); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	created, err := ca.CreateService(ctx, s.applierFor(c), *svcReq)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &anchorv1.CreateServiceResponse{Service: servicePB(&created.Service)}
	for i := range created.EABKeys {
		out.EabKeys = append(out.EabKeys, eabSecretPB(&created.EABKeys[i]))
	}
	return out, nil
}

func serviceRequest(req *anchorv1.CreateServiceRequest) (*ca.ServiceRequest, error) {
	if err := checkNames("org", req.Org); err != nil {
		return nil, err
	}
	if err := checkName("name", "service", req.Name); err != nil {
		return nil, err
	}
	if len(req.Identifiers) == 0 {
		return nil, invalid("identifiers: a service needs at least one identifier")
	}
	ids, err := normalizeIdentifiers("identifiers", req.Identifiers)
	if err != nil {
		return nil, err
	}
	if len(req.Realms) == 0 {
		return nil, invalid("realms: a service needs at least one realm")
	}
	out := &ca.ServiceRequest{
		Org: req.Org, Name: req.Name, Identifiers: ids, PreAuthorize: req.PreAuthorize,
	}
	for _, r := range req.Realms {
		if err := checkNames("realm", r.Realm, "chain", r.Chain); err != nil {
			return nil, err
		}
		if err := checkOptionalName("subca", r.Subca); err != nil {
			return nil, err
		}
		out.Realms = append(out.Realms,
			ca.ServiceRealmRequest{Realm: r.Realm, Chain: r.Chain, SubCA: r.Subca})
	}
	return out, nil
}

// eabSecretPB describes a new EAB key with its HMAC key, base64url without
// padding as RFC 8555, 7.3.4 clients take it.
func eabSecretPB(k *fsm.EABKey) *anchorv1.EABSecret {
	return &anchorv1.EABSecret{
		Key: eabKeyPB(k), HmacKey: base64.RawURLEncoding.EncodeToString(k.HMACKey),
	}
}

func (s *services) ListServices(ctx context.Context,
	req *anchorv1.ListServicesRequest) (*anchorv1.ListServicesResponse, error) {
	if _, err := s.authorize(ctx, readAccess, req.Org); err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org); err != nil {
		return nil, err
	}
	out := &anchorv1.ListServicesResponse{}
	err := s.view(ctx, func(tx *fsm.Tx) error {
		if _, err := lookupOrg(tx, req.Org); err != nil {
			return err
		}
		list, err := tx.Services(req.Org)
		for i := range list {
			out.Services = append(out.Services, servicePB(&list[i]))
		}
		return err
	})
	return out, toStatus(err)
}

func (s *services) GetService(ctx context.Context,
	req *anchorv1.GetServiceRequest) (*anchorv1.Service, error) {
	if _, err := s.authorize(ctx, readAccess, req.Org); err != nil {
		return nil, err
	}
	if err := checkNames("org", req.Org); err != nil {
		return nil, err
	}
	if err := checkName("name", "service", req.Name); err != nil {
		return nil, err
	}
	var out *anchorv1.Service
	err := s.view(ctx, func(tx *fsm.Tx) error {
		svc, err := lookupService(tx, req.Org, req.Name)
		if err == nil {
			out = servicePB(svc)
		}
		return err
	})
	return out, toStatus(err)
}
