package main

import (
	"context"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	anchorv1 "anchor/api/anchorv1"
)

// clients are the API clients of one run. They share one connection, which
// is opened on the first call, so commands that call nothing (help,
// completion, admin issue-cert) need no address or credentials.
type clients struct {
	orgs     anchorv1.OrganizationsClient
	realms   anchorv1.RealmsClient
	chains   anchorv1.ChainsClient
	subCAs   anchorv1.SubCAsClient
	services anchorv1.ServicesClient
	eab      anchorv1.EABKeysClient
	certs    anchorv1.CertificatesClient
	crls     anchorv1.CRLsClient
	audit    anchorv1.AuditClient
	cluster  anchorv1.ClusterClient
}

func newClients(a *app) clients {
	c := lazyConn{a: a}
	return clients{
		orgs:     anchorv1.NewOrganizationsClient(c),
		realms:   anchorv1.NewRealmsClient(c),
		chains:   anchorv1.NewChainsClient(c),
		subCAs:   anchorv1.NewSubCAsClient(c),
		services: anchorv1.NewServicesClient(c),
		eab:      anchorv1.NewEABKeysClient(c),
		certs:    anchorv1.NewCertificatesClient(c),
		crls:     anchorv1.NewCRLsClient(c),
		audit:    anchorv1.NewAuditClient(c),
		cluster:  anchorv1.NewClusterClient(c),
	}
}

// lazyConn opens the app's connection when the first call needs it.
type lazyConn struct{ a *app }

// Invoke performs a unary call on the app's connection.
func (l lazyConn) Invoke(ctx context.Context,
	method string, req, reply any, opts ...grpc.CallOption) error {
	conn, err := l.a.client(ctx)
	if err != nil {
		return err
	}
	return conn.Invoke(ctx, method, req, reply, opts...)
}

// NewStream opens a stream on the app's connection.
func (l lazyConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string,
	opts ...grpc.CallOption) (grpc.ClientStream, error) {
	conn, err := l.a.client(ctx)
	if err != nil {
		return nil, err
	}
	return conn.NewStream(ctx, desc, method, opts...)
}

// unary calls a unary method of a generated client with the --timeout
// deadline.
func unary[Req, Resp any](a *app, cmd *cobra.Command,
	method func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	ctx, cancel := a.callContext(cmd)
	defer cancel()
	return method(ctx, req)
}
