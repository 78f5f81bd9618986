package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	anchorv1 "anchor/api/anchorv1"
	"anchor/fsm"
)

// ErrNotLeader is returned by leader-only operations on a follower that
// could not reach the leader.
var ErrNotLeader = errors.New("this node is not the leader")

// Join adds a node to the Raft configuration. On a follower the request is
// passed to the leader. Adding a member that is already present with the
// same address and suffrage changes nothing.
func (n *Node) Join(ctx context.Context, req *anchorv1.JoinRequest) (uint64, error) {
	if req.Id == "" || req.RaftAddress == "" {
		return 0, status.Error(codes.InvalidArgument, "join needs the node's id and raft_address")
	}

	for _, a := range []struct{ field, value string }{
		{"raft_address", req.RaftAddress}, {"grpc_address", req.GrpcAddress},
	} {
		if a.value == "" {
			continue // a missing grpc_address gets its own error on the leader
		}
		if _, _, err := net.SplitHostPort(a.value); err != nil {
			return 0, status.Errorf(codes.InvalidArgument, "join: invalid %s %q: %v, want host:port",
				a.field, a.value, err)
		}
	}

	if n.raft.State() != raft.Leader {
		client, err := n.leaderClusterClient(ctx)
		if err != nil {
			return 0, err
		}
		resp, err := client.Join(ctx, req)
		if err != nil {
			return 0, err
		}
		return resp.Index, nil
	}
	cfg := n.raft.GetConfiguration()
	if err := cfg.Error(); err != nil {
		return 0, status.Errorf(codes.Unavailable, "read raft configuration: %v", err)
	}
	wantSuffrage := raft.Voter
	if req.Nonvoter {
		wantSuffrage = raft.Nonvoter
	}
	for _, s := range cfg.Configuration().Servers {
		if string(s.ID) == req.Id && string(s.Address) == req.RaftAddress && s.Suffrage == wantSuffrage {
			return cfg.Index(), nil
		}
		if string(s.ID) != req.Id && string(s.Address) == req.RaftAddress {
			return 0, status.Errorf(codes.AlreadyExists,
				"raft address %s is already used by member %s: remove it first", req.RaftAddress, s.ID)
		}
	}
	if req.GrpcAddress == "" {
		return 0, status.Error(codes.InvalidArgument, "join needs the node's grpc_address")
	}
	if err := n.recordMember(ctx, req.Id, req.RaftAddress, req.GrpcAddress); err != nil {
		return 0, err
	}
	var f raft.IndexFuture
	if req.Nonvoter {
		f = n.raft.AddNonvoter(raft.ServerID(req.Id), raft.ServerAddress(req.RaftAddress), 0, n.membershipTimeout(ctx))
	} else {
		f = n.raft.AddVoter(raft.ServerID(req.Id), raft.ServerAddress(req.RaftAddress), 0, n.membershipTimeout(ctx))
	}
	if err := f.Error(); err != nil {
		return 0, status.Errorf(codes.Unavailable, "add %s to the cluster: %v", req.Id, err)
	}
	n.logger.Info("member added", "member", req.Id, "raft_addr", req.RaftAddress, "nonvoter", req.Nonvoter)
	return f.Index(), nil
}

// Remove takes a node out of the Raft configuration. Unless force is set, it
// is refused when the voters left could not form a quorum from the members
// that gossip reports alive.
func (n *Node) Remove(ctx context.Context, id string, force bool) (uint64, error) {
	if id == "" {
		return 0, status.Error(codes.InvalidArgument, "remove needs the node's id")
	}
	if n.raft.State() != raft.Leader {
		client, err := n.leaderClusterClient(ctx)
		if err != nil {
			return 0, err
		}
		resp, err := client.Remove(ctx, &anchorv1.RemoveRequest{Id: id, Force: force})
		if err != nil {
			return 0, err
		}
		return resp.Index, nil
	}
	cfg := n.raft.GetConfiguration()
	if err := cfg.Error(); err != nil {
		return 0, status.Errorf(codes.Unavailable, "read raft configuration: %v", err)
	}
	servers := cfg.Configuration().Servers
	found := false
	for _, s := range servers {
		found = found || string(s.ID) == id
	}
	if !found {
		return 0, status.Errorf(codes.NotFound, "node %q is not a member of the cluster", id)
	}
	if !force {
		if err := n.checkQuorumWithout(servers, id); err != nil {
			return 0, err
		}
	}
	f := n.raft.RemoveServer(raft.ServerID(id), 0, n.membershipTimeout(ctx))
	if err := f.Error(); err != nil {
		return 0, status.Errorf(codes.Unavailable, "remove %s from the cluster: %v", id, err)
	}
	n.logger.Info("member removed", "member", id, "forced", force)
	return f.Index(), nil
}

// checkQuorumWithout refuses a removal after which the alive voters would
// not be a majority of the voters left.
func (n *Node) checkQuorumWithout(servers []raft.Server, id string) error {
	voters, alive := n.votersWithout(servers, id)
	if voters == 0 {
		return status.Errorf(codes.FailedPrecondition, "removing %s would leave no voters", id)
	}
	if alive < voters/2+1 {
		return status.Errorf(codes.FailedPrecondition,
			"removing %s would leave %d voters of which %d are alive, below the quorum of %d; "+
				"use force to remove it anyway", id, voters, alive, voters/2+1)
	}
	return nil
}

// votersWithout counts the voters other than id, and how many of them
// gossip reports alive.
func (n *Node) votersWithout(servers []raft.Server, id string) (voters, alive int) {
	for _, s := range servers {
		if s.Suffrage != raft.Voter || string(s.ID) == id {
			continue
		}
		voters++
		if n.memberAlive(string(s.ID)) {
			alive++
		}
	}
	return voters, alive
}

// TransferLeadership hands leadership to target, or to the most up-to-date
// voter when target is empty, and returns the new leader's ID.
func (n *Node) TransferLeadership(ctx context.Context, target string) (string, error) {
	if n.raft.State() != raft.Leader {
		client, err := n.leaderClusterClient(ctx)
		if err != nil {
			return "", err
		}
		resp, err := client.TransferLeadership(ctx, &anchorv1.TransferLeadershipRequest{TargetId: target})
		if err != nil {
			return "", err
		}
		return resp.LeaderId, nil
	}
	var f raft.Future
	if target == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		addr, err := n.raftAddrOf(target)
		if err != nil {
			return "", err
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(target), raft.ServerAddress(addr))
	}
	if err := f.Error(); err != nil {
		return "", status.Errorf(codes.Unavailable, "transfer leadership: %v", err)
	}
	// Wait for the new leader to be known here.
	for {
		if _, id := n.raft.LeaderWithID(); id != "" && string(id) != n.cfg.NodeID {
			n.logger.Info("leadership transferred", "new_leader", id)
			return string(id), nil
		}
		select {
		case <-ctx.Done():
			return "", status.Errorf(codes.DeadlineExceeded, "leadership transfer started, new leader not seen yet")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// recordMember commits a member's addresses so that every node can reach it.
func (n *Node) recordMember(ctx context.Context, id, raftAddr, grpcAddr string) error {
	res, err := n.Apply(ctx, fsm.MustCommand(fsm.CmdSetClusterMember,
		fsm.ClusterMember{ID: id, RaftAddr: raftAddr, GRPCAddr: grpcAddr}))
	if err == nil {
		err = res.Decode(nil)
	}
	if err != nil {
		return status.Errorf(codes.Unavailable, "record member %s: %v", id, err)
	}
	return nil
}

// recordInitialPeers commits the addresses of the bootstrap peers once this
// node leads, so that members joining later can reach them.
func (n *Node) recordInitialPeers() {
	for {
		select {
		case <-n.stopCh:
			return
		case isLeader := <-n.raft.LeaderCh():
			if !isLeader {
				continue
			}
		}
		for _, p := range n.cfg.Peers {
			var known bool
			_ = n.fsm.View(func(tx *fsm.Tx) error {
				_, err := tx.ClusterMember(p.ID)
				known = err == nil
				return nil
			})
			if known {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := n.recordMember(ctx, p.ID, p.RaftAddr, p.GRPCAddr); err != nil {
				n.logger.Warn("record initial peer failed", "member", p.ID, "error", err)
			}
			cancel()
		}
	}
}

// keepOwnRecord records this node's addresses again whenever the
// replicated record differs from them, until the node stops. A restored
// snapshot brings the records of the cluster it was saved from, and a
// follower forwards to the leader's recorded gRPC address.
func (n *Node) keepOwnRecord() {
	var last time.Time
	for {
		changed := n.fsm.Watch()
		if n.ownRecordStale() && time.Since(last) >= 2*time.Second {
			last = time.Now()
			n.logger.Warn("replicated addresses of this node differ from its configuration, as after " +
				"a snapshot restore; recording them again")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := n.recordMember(ctx, n.cfg.NodeID, n.cfg.RaftAddr, n.cfg.GRPCAddr); err != nil {
				n.logger.Warn("record own addresses failed", "error", err)
			}
			cancel()
		}
		select {
		case <-n.stopCh:
			return
		case <-changed:
		case <-time.After(3 * time.Second):
		}
	}
}

// ownRecordStale reports whether this node, a member of the Raft
// configuration, has a replicated address record that differs from its
// configuration. A node that has not joined yet, or whose record the
// join has yet to write, is left alone.
func (n *Node) ownRecordStale() bool {
	if _, err := n.raftAddrOf(n.cfg.NodeID); err != nil && status.Code(err) != codes.FailedPrecondition {
		return false // not in the configuration
	}
	var rec *fsm.ClusterMember
	_ = n.fsm.View(func(tx *fsm.Tx) error {
		rec, _ = tx.ClusterMember(n.cfg.NodeID)
		return nil
	})
	return rec != nil && (rec.RaftAddr != n.cfg.RaftAddr || rec.GRPCAddr != n.cfg.GRPCAddr)
}

func (n *Node) raftAddrOf(id string) (string, error) {
	cfg := n.raft.GetConfiguration()
	if err := cfg.Error(); err != nil {
		return "", err
	}
	for _, s := range cfg.Configuration().Servers {
		if string(s.ID) == id {
			if s.Suffrage != raft.Voter {
				return "", status.Errorf(codes.FailedPrecondition, "node %q is not a voter", id)
			}
			return string(s.Address), nil
		}
	}
	return "", status.Errorf(codes.NotFound, "node %q is not a member of the cluster", id)
}

// leaderClusterClient returns a Cluster client for the current leader,
// waiting for one to be elected until ctx ends.
func (n *Node) leaderClusterClient(ctx context.Context) (anchorv1.ClusterClient, error) {
	for {
		if _, id := n.raft.LeaderWithID(); id != "" {
			addr, err := n.grpcAddrOf(string(id))
			if err != nil {
				return nil, status.Error(codes.Unavailable, err.Error())
			}
			conn, err := n.conn(addr)
			if err != nil {
				return nil, status.Error(codes.Unavailable, err.Error())
			}
			return anchorv1.NewClusterClient(conn), nil
		}
		select {
		case <-ctx.Done():
			return nil, status.Errorf(codes.Unavailable, "%v", &NoLeaderError{NodeID: n.cfg.NodeID,
				Voters: n.VoterCount(), Last: ErrNoLeader})
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (n *Node) membershipTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return n.cfg.ApplyTimeout
}

// HasMembership reports whether this node is in its local copy of the Raft
// configuration. A joiner is not, until the leader adds it.
func (n *Node) HasMembership() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.cfg.NodeID {
			return true
		}
	}
	return false
}

// JoinCluster requests the members at seeds (gRPC addresses) to add this node,
// trying each in turn until one succeeds or ctx ends.
func (n *Node) JoinCluster(ctx context.Context, seeds []string, nonvoter bool) error {
	req := &anchorv1.JoinRequest{
		Id: n.cfg.NodeID, RaftAddress: n.cfg.RaftAddr, GrpcAddress: n.cfg.GRPCAddr, Nonvoter: nonvoter,
	}
	var last error
	for {
		for _, seed := range seeds {
			conn, err := n.conn(seed)
			if err != nil {
				last = err
				continue
			}
			attempt, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err = anchorv1.NewClusterClient(conn).Join(attempt, req)
			cancel()
			if err == nil {
				n.logger.Info("joined cluster", "seed", seed, "nonvoter", nonvoter)
				return nil
			}
			last = err
			n.logger.Warn("join attempt failed", "seed", seed, "error", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("join cluster through %v: %w (last error: %v)", seeds, ctx.Err(), last)
		case <-time.After(time.Second):
		}
	}
}
