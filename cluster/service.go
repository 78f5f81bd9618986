package cluster

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	anchorv1 "anchor/api/anchorv1"
	"anchor/fsm"
)

// RegisterServices registers the node's internal and cluster gRPC services.
func (n *Node) RegisterServices(s *grpc.Server) {
	anchorv1.RegisterInternalServer(s, &internalService{node: n})
	anchorv1.RegisterClusterServer(s, &clusterService{node: n})
}

type internalService struct {
	anchorv1.UnimplementedInternalServer
	node *Node
}

// Apply commits a command forwarded by a follower. Only the leader accepts,
// and only from a peer that presented a node certificate.
func (s *internalService) Apply(ctx context.Context, req *anchorv1.ApplyRequest) (*anchorv1.ApplyResponse, error) {
	if err := requireNodePeer(ctx); err != nil {
		s.node.logger.Warn("internal call denied", "method", "Apply", "error", err)
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	if _, err := fsm.DecodeCommand(req.Command); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid command: %v", err)
	}
	if s.node.raft.State() != raft.Leader {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s is not the leader", s.node.ID())
	}
	res, index, err := s.node.applyLocal(ctx, req.Command)
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return nil, status.Errorf(codes.FailedPrecondition, "node %s lost leadership: %v", s.node.ID(), err)
		}
		return nil, status.Errorf(codes.Unavailable, "apply on %s: %v", s.node.ID(), err)
	}
	data, err := json.Marshal(res)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode result: %v", err)
	}
	return &anchorv1.ApplyResponse{Result: data, Index: index}, nil
}

// requireNodePeer checks that the gRPC peer authenticated with a node
// certificate of the cluster CA.
func requireNodePeer(ctx context.Context) error {
	cert, err := peerCertificate(ctx)
	if err != nil {
		return err
	}
	return RequireNode(cert)
}

// peerCertificate returns the verified client certificate of a gRPC call.
func peerCertificate(ctx context.Context) (*x509.Certificate, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, errors.New("no peer information")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return nil, fmt.Errorf("peer %s did not authenticate with a certificate", p.Addr)
	}
	return info.State.VerifiedChains[0][0], nil
}

// GRPCServerCredentials returns the server side of mutual TLS for the node's
// gRPC server: clients must present a certificate of the cluster CA, either a
// node certificate or an admin certificate.
func (n *Node) GRPCServerCredentials() credentials.TransportCredentials {
	return credentials.NewTLS(n.cfg.Credentials.ServerConfig(nil))
}

// ReadIndex confirms leadership with a quorum and returns the commit index.
func (s *internalService) ReadIndex(ctx context.Context, _ *anchorv1.ReadIndexRequest) (*anchorv1.ReadIndexResponse, error) {
	if err := requireNodePeer(ctx); err != nil {
		s.node.logger.Warn("internal call denied", "method", "ReadIndex", "error", err)
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	if s.node.raft.State() != raft.Leader {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s is not the leader", s.node.ID())
	}
	idx, err := s.node.confirmLeadership(ctx)
	if err != nil {
		return nil, err
	}
	return &anchorv1.ReadIndexResponse{Index: idx}, nil
}

type clusterService struct {
	anchorv1.UnimplementedClusterServer
	node *Node
}

// Status describes the cluster to nodes, cluster admins and read-only admins.
func (s *clusterService) Status(ctx context.Context, _ *anchorv1.StatusRequest) (*anchorv1.StatusResponse, error) {
	if err := s.authorize(ctx, "Status", RoleReadOnly); err != nil {
		return nil, err
	}
	return s.node.Status()
}

// Join adds a node. A node certificate may join only itself.
func (s *clusterService) Join(ctx context.Context, req *anchorv1.JoinRequest) (*anchorv1.JoinResponse, error) {
	if err := s.authorize(ctx, "Join"); err != nil {
		return nil, err
	}
	idx, err := s.node.Join(ctx, req)
	if err != nil {
		return nil, err
	}
	return &anchorv1.JoinResponse{Index: idx}, nil
}

func (s *clusterService) Remove(ctx context.Context, req *anchorv1.RemoveRequest) (*anchorv1.RemoveResponse, error) {
	if err := s.authorize(ctx, "Remove"); err != nil {
		return nil, err
	}
	idx, err := s.node.Remove(ctx, req.Id, req.Force)
	if err != nil {
		return nil, err
	}
	return &anchorv1.RemoveResponse{Index: idx}, nil
}

func (s *clusterService) TransferLeadership(ctx context.Context,
	req *anchorv1.TransferLeadershipRequest) (*anchorv1.TransferLeadershipResponse, error) {
	if err := s.authorize(ctx, "TransferLeadership"); err != nil {
		return nil, err
	}
	id, err := s.node.TransferLeadership(ctx, req.TargetId)
	if err != nil {
		return nil, err
	}
	return &anchorv1.TransferLeadershipResponse{LeaderId: id}, nil
}

func (s *clusterService) SaveSnapshot(_ *anchorv1.SaveSnapshotRequest, stream anchorv1.Cluster_SaveSnapshotServer) error {
	if err := s.authorize(stream.Context(), "SaveSnapshot"); err != nil {
		return err
	}
	w := &chunkWriter{send: stream.Send}
	idx, size, err := s.node.SaveSnapshot(stream.Context(), w)
	if err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	return stream.Send(&anchorv1.SnapshotChunk{Index: idx, Size: uint64(size)})
}

func (s *clusterService) RestoreSnapshot(stream anchorv1.Cluster_RestoreSnapshotServer) error {
	if err := s.authorize(stream.Context(), "RestoreSnapshot"); err != nil {
		return err
	}
	tmp, size, err := receiveSnapshot(stream)
	if err != nil {
		return err
	}
	defer removeTemp(tmp)
	idx, err := s.node.RestoreSnapshot(stream.Context(), tmp, size)
	if err != nil {
		return err
	}
	return stream.SendAndClose(&anchorv1.RestoreSnapshotResponse{Index: idx})
}

// authorize lets nodes and cluster admins call every method, and admins
// with one of the extra roles the method at hand (read-only for Status).
// Nodes are let through because a follower passes an admin's request on to
// the leader with its own node certificate, after authorizing the admin
// itself. Each denial is logged with the caller, its role and the method.
func (s *clusterService) authorize(ctx context.Context, method string, extra ...string) error {
	cert, err := peerCertificate(ctx)
	if err != nil {
		s.node.logger.Warn("admin call denied", "method", method, "error", err)
		return status.Error(codes.PermissionDenied, err.Error())
	}
	if RequireNode(cert) == nil {
		return nil
	}
	role := AdminRole(cert)
	if role == RoleClusterAdmin || role != "" && slices.Contains(extra, role) {
		return nil
	}
	name := cert.Subject.CommonName
	s.node.logger.Warn("admin call denied", "method", method, "caller", name, "role", role)
	return status.Errorf(codes.PermissionDenied, "%q (role %q) may not call %s", name, role, method)
}

// appliedIndex returns the last log index this node has applied, counting
// the committed entries that never reach the state machine, so that an
// idle cluster does not show one entry behind. Raft's own applied index
// counts entries once queued for the state machine, before they are
// applied, so it is not used.
func (n *Node) appliedIndex() uint64 {
	return n.appliedUpTo(n.raft.CommitIndex())
}

// Status describes the cluster from this node's local view.
func (n *Node) Status() (*anchorv1.StatusResponse, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, status.Errorf(codes.Unavailable, "read raft configuration: %v", err)
	}
	leaderAddr, leaderID := n.raft.LeaderWithID()
	resp := &anchorv1.StatusResponse{
		NodeId:        n.cfg.NodeID,
		LeaderId:      string(leaderID),
		LeaderAddress: string(leaderAddr),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.appliedIndex(),
	}
	holders := map[string][]string{}
	records := map[string]fsm.Node{}
	_ = n.fsm.View(func(tx *fsm.Tx) error {
		keys, _ := tx.Keys()
		for _, k := range keys {
			for _, h := range k.Holders {
				holders[h] = append(holders[h], k.ID)
			}
		}
		nodes, _ := tx.Nodes()
		for _, rec := range nodes {
			records[rec.ID] = rec
		}
		return nil
	})
	var health map[string]memberHealth
	if n.gossip != nil {
		health = n.gossip.health()
	}
	for _, srv := range f.Configuration().Servers {
		id := string(srv.ID)
		m := &anchorv1.Member{
			Id:          id,
			RaftAddress: string(srv.Address),
			Suffrage:    map[bool]string{true: "voter", false: "nonvoter"}[srv.Suffrage == raft.Voter],
			Leader:      srv.ID == leaderID,
			CaKeys:      holders[id],
		}
		if rec, ok := records[id]; ok {
			m.GrpcAddress = rec.GRPCAddr
			m.HttpAddress = rec.HTTPAddr
		}
		m.Gossip = "unknown"
		if h, ok := health[id]; ok {
			m.Gossip, m.AppliedIndex = h.State, h.Applied
		}
		if id == n.cfg.NodeID {
			m.AppliedIndex = resp.AppliedIndex
		}
		resp.Members = append(resp.Members, m)
	}
	return resp, nil
}
