package api

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"anchor/cluster"
	"anchor/fsm"
)

// caller is the administrator of a call, as its client certificate names it.
type caller struct {
	name string // the certificate's common name
	role string // cluster.RoleClusterAdmin, cluster.RoleReadOnly or org-admin/<org>
	org  string // the organization of an organization admin, else empty
}

// actor returns the audit trail's name of the caller.
func (c *caller) actor() string { return "admin:" + c.name }

// access is what a call does to the objects of an organization.
type access int

const (
	// readAccess reads: cluster admins, read-only admins, and the admin of
	// the object's organization.
	readAccess access = iota
	// writeAccess changes objects of one organization: cluster admins and
	// the organization's admin.
	writeAccess
	// clusterAccess changes what belongs to no organization, such as the
	// list of organizations: cluster admins only.
	clusterAccess
)

func (a access) String() string {
	switch a {
	case readAccess:
		return "read"
	case writeAccess:
		return "write"
	}
	return "administer"
}

// allows reports whether c may perform a on the objects of org.
func (c *caller) allows(a access, org string) bool {
	switch c.role {
	case cluster.RoleClusterAdmin:
		return true
	case cluster.RoleReadOnly:
		return a == readAccess
	}
	return a != clusterAccess && org != "" && org == c.org
}

// authenticate identifies the administrator of a call. Every failure is
// logged and returned as PERMISSION_DENIED.
func (s *Server) authenticate(ctx context.Context) (*caller, error) {
	c, err := callerOf(ctx)
	if err != nil {
		s.logger.Warn("admin call denied", "method", methodOf(ctx), "caller", peerName(ctx),
			"reason", err.Error())
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	return c, nil
}

// authorize authenticates the caller and checks that it may perform a on
// the objects of org. A denial is logged with the caller, the method and
// the organization, and returned as PERMISSION_DENIED; it happens before
// the call reads or writes anything.
func (s *Server) authorize(ctx context.Context, a access, org string) (*caller, error) {
	c, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if !c.allows(a, org) {
		return nil, s.denyOrg(ctx, c, a, org)
	}
	return c, nil
}

// denyOrg logs and returns the denial of a on the objects of org.
func (s *Server) denyOrg(ctx context.Context, c *caller, a access, org string) error {
	if a == clusterAccess || org == "" {
		return s.deny(ctx, c, a, "the cluster")
	}
	return s.deny(ctx, c, a, fmt.Sprintf("organization %q", org))
}

// deny logs and returns the denial of a on object, such as
// `organization "acme"`.
func (s *Server) deny(ctx context.Context, c *caller, a access, object string) error {
	s.logger.Warn("admin call denied", "method", methodOf(ctx), "caller", c.name, "role", c.role,
		"access", a.String(), "object", object)
	return status.Errorf(codes.PermissionDenied, "%q (role %s) may not %s %s",
		c.name, c.role, a, object)
}

// callerOf reads the role from the verified client certificate. Node
// certificates are rejected: nodes use the internal and cluster services,
// never the admin API.
func callerOf(ctx context.Context) (*caller, error) {
	cert, err := clientCertificate(ctx)
	if err != nil {
		return nil, err
	}
	name := cert.Subject.CommonName
	if cluster.RequireNode(cert) == nil {
		return nil, fmt.Errorf("node certificate %q may not call the admin API", name)
	}
	role := cluster.AdminRole(cert)
	switch role {
	case cluster.RoleClusterAdmin, cluster.RoleReadOnly:
		return &caller{name: name, role: role}, nil
	case "":
		return nil, fmt.Errorf("certificate %q is not an admin certificate (OU %v)", name,
			cert.Subject.OrganizationalUnit)
	}
	org, ok := strings.CutPrefix(role, cluster.RoleOrgAdminPrefix)
	if !ok || fsm.ValidateName("organization", org) != nil {
		return nil, fmt.Errorf("certificate %q has the unknown role %q", name, role)
	}
	return &caller{name: name, role: role, org: org}, nil
}

// clientCertificate returns the verified client certificate of a call.
func clientCertificate(ctx context.Context) (*x509.Certificate, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, errors.New("no peer information")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return nil, fmt.Errorf("peer %s did not authenticate with a certificate", p.Addr)
	}
	return info.State.VerifiedChains[0][0], nil
}

// peerName names the peer of a call that could not be authenticated: its
// certificate's common name when it has one, else its address.
func peerName(ctx context.Context) string {
	if cert, err := clientCertificate(ctx); err == nil {
		return cert.Subject.CommonName
	}
	if p, ok := peer.FromContext(ctx); ok {
		return p.Addr.String()
	}
	return "unknown"
}

// methodOf returns the full gRPC method name of a call, such as
// "/anchor.v1.Chains/CreateChain".
func methodOf(ctx context.Context) string {
	if m, ok := grpc.Method(ctx); ok {
		return m
	}
	return "unknown"
}

// orgOfID returns the organization of an object ID that starts with it,
// such as a chain ID "org/realm/chain" or a CA ID.
func orgOfID(id string) string {
	org, _, _ := strings.Cut(id, "/")
	return org
}
