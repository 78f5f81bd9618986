package api

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	anchorv1 "anchor/api/anchorv1"
	"anchor/ca"
	"anchor/cluster"
	"anchor/fsm"
)

// Server implements the admin gRPC services of one node.
type Server struct {
	node *cluster.Node
	// keys is this node's HSM: chain and SubCA creation generate their keys
	// in the HSM of the node that receives the call.
	keys ca.KeyStore
	// urls are the nodes' public HTTP base URLs, written into new CA
	// certificates and SubCA policies.
	urls   ca.URLs
	logger *slog.Logger
	// leaderWait bounds how long a read waits for a leader to confirm its
	// read barrier: the node's leader wait, which also bounds writes.
	leaderWait time.Duration
}

// NewServer returns the admin API of node, which generates CA keys in keys
// and writes urls into new CA certificates.
func NewServer(node *cluster.Node, keys ca.KeyStore, urls ca.URLs, logger *slog.Logger) *Server {
	return &Server{node: node, keys: keys, urls: urls, logger: logger, leaderWait: node.LeaderWait()}
}

// Register registers every admin service on g. The server's transport
// credentials must require client certificates of the cluster-internal CA
// (cluster.Node.GRPCServerCredentials).
func (s *Server) Register(g *grpc.Server) {
	anchorv1.RegisterOrganizationsServer(g, &organizations{Server: s})
	anchorv1.RegisterRealmsServer(g, &realms{Server: s})
	anchorv1.RegisterChainsServer(g, &chains{Server: s})
	anchorv1.RegisterSubCAsServer(g, &subCAs{Server: s})
	anchorv1.RegisterServicesServer(g, &services{Server: s})
	anchorv1.RegisterEABKeysServer(g, &eabKeys{Server: s})
	anchorv1.RegisterCertificatesServer(g, &certificates{Server: s})
	anchorv1.RegisterCRLsServer(g, &crls{Server: s})
	anchorv1.RegisterAuditServer(g, &audit{Server: s})
}

// view runs fn on this node's state once the state reflects every write
// committed before the call.
func (s *Server) view(ctx context.Context, fn func(tx *fsm.Tx) error) error {
	if err := s.readBarrier(ctx); err != nil {
		return err
	}
	return s.node.State().View(fn)
}

// apply commits cmd on behalf of c and decodes the result into out (nil to
// discard it).
func (s *Server) apply(ctx context.Context, c *caller, cmd *fsm.Command, out any) error {
	res, err := s.node.Apply(ctx, cmd.WithActor(c.actor()))
	if err != nil {
		return err
	}
	return res.Decode(out)
}

// applierFor returns the committer that ca and crl functions use on behalf
// of c.
func (s *Server) applierFor(c *caller) actorApplier {
	return actorApplier{node: s.node, actor: c.actor()}
}

// actorApplier commits commands through the cluster node with the caller
// as their actor, so that the commands which ca and crl functions build
// (key.create, chain.create, credential.issue, ...) enter the audit trail.
type actorApplier struct {
	node  *cluster.Node
	actor string
}

// Apply stamps cmd with the actor and commits it through the leader.
func (a actorApplier) Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	return a.node.Apply(ctx, cmd.WithActor(a.actor))
}

// State returns the node's replicated state.
func (a actorApplier) State() *fsm.FSM { return a.node.State() }
