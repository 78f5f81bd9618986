package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	anchorv1 "anchor/api/anchorv1"
	"anchor/fsm"
)

// ErrNoLeader is returned by Apply when no leader was known before the
// deadline, such as when a minority of nodes is reachable.
var ErrNoLeader = errors.New("no cluster leader")

// NoLeaderError explains which node saw no leader and what it can reach.
type NoLeaderError struct {
	NodeID string
	Voters int
	Waited time.Duration
	// Last is the last failure seen while looking for the leader.
	Last error
}

func (e *NoLeaderError) Error() string {
	return fmt.Sprintf("no cluster leader: node %s waited %s without reaching a leader among %d voters "+
		"(last error: %v); a majority of voters must be running and reachable",
		e.NodeID, e.Waited.Round(time.Millisecond), e.Voters, e.Last)
}

func (e *NoLeaderError) Unwrap() error { return ErrNoLeader }

// Apply commits cmd to the replicated log and returns its result. On a
// follower the command is forwarded to the leader. Apply retries while
// leadership moves and returns NoLeaderError when no leader was reachable
// for Config.LeaderWait or until the context ends, and raft.ErrRaftShutdown
// when the node shuts down while it waits. The retries share one
// request ID, so within fsm.RequestWindow a retry of a command that
// committed returns that copy's result instead of applying it again.
func (n *Node) Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	// Every retry below sends these bytes, so a retry of a command that did
	// commit returns its result instead of applying it again.
	data, err := cmd.WithRequestID().Encode()
	if err != nil {
		return nil, fmt.Errorf("encode command: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	start := time.Now()
	backoff := 20 * time.Millisecond
	for {
		leaderChanged := n.leaders.next()
		res, retry, err := n.applyOnce(ctx, data)
		if !retry {
			return res, err
		}
		n.logger.Debug("apply retry", "type", cmd.Type, "error", err)
		noLeader := &NoLeaderError{
			NodeID: n.cfg.NodeID, Voters: n.VoterCount(), Waited: time.Since(start), Last: err,
		}
		if noLeader.Waited >= n.cfg.LeaderWait {
			return nil, noLeader
		}
		select {
		case <-ctx.Done():
			return nil, noLeader
		case <-n.stopCh:
			return nil, raft.ErrRaftShutdown
		case <-leaderChanged:
			// An election ended or began: look at the leader again now.
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 250*time.Millisecond)
	}
}

// LeaderWait returns how long a write waits for a reachable leader before
// it fails with NoLeaderError (Config.LeaderWait).
func (n *Node) LeaderWait() time.Duration { return n.cfg.LeaderWait }

// applyOnce tries one route to the leader. retry reports a transient failure
// (no leader, leadership lost, leader unreachable).
func (n *Node) applyOnce(ctx context.Context, data []byte) (*fsm.Result, bool, error) {
	if n.raft.State() == raft.Leader {
		res, _, err := n.applyLocal(ctx, data)
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
			errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return nil, true, err
		}
		return res, false, err
	}
	_, leaderID := n.raft.LeaderWithID()
	if leaderID == "" {
		return nil, true, ErrNoLeader
	}
	addr, err := n.grpcAddrOf(string(leaderID))
	if err != nil {
		return nil, true, err
	}
	res, err := n.forward(ctx, string(leaderID), addr, data)
	if err != nil {
		code := status.Code(err)
		if code == codes.Unavailable || code == codes.FailedPrecondition || code == codes.DeadlineExceeded {
			return nil, true, err
		}
		return nil, false, err
	}
	return res, false, nil
}

// applyLocal commits data on this node, which believes it is the leader, and
// returns the result with the command's log index.
func (n *Node) applyLocal(ctx context.Context, data []byte) (*fsm.Result, uint64, error) {
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := n.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return nil, 0, err
	}
	res, ok := f.Response().(*fsm.Result)
	if !ok || res == nil {
		return nil, 0, fmt.Errorf("apply returned no result at index %d", f.Index())
	}
	return res, f.Index(), nil
}

// forward sends data to leaderID at addr and returns the result once this
// node has applied it. The call ends early with UNAVAILABLE when Raft on
// this node stops naming leaderID as the leader, so a leader that vanished
// behind an open connection costs an election, not the apply timeout. A
// retry is safe because every copy carries the same request ID.
func (n *Node) forward(ctx context.Context, leaderID, addr string, data []byte) (*fsm.Result, error) {
	conn, err := n.readyConn(ctx, addr)
	if err != nil {
		return nil, err
	}
	call, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go n.watchLeader(call, cancel, leaderID)
	resp, err := anchorv1.NewInternalClient(conn).Apply(call, &anchorv1.ApplyRequest{Command: data})
	if err != nil {
		if cause := context.Cause(call); errors.Is(cause, errLeaderChanged) {
			return nil, status.Error(codes.Unavailable, cause.Error())
		}
		return nil, err
	}
	var res fsm.Result
	if err := json.Unmarshal(resp.Result, &res); err != nil {
		return nil, fmt.Errorf("decode forwarded result from %s: %w", addr, err)
	}
	// Read-your-writes: the caller reads this node's state next, so wait
	// until this node has applied the command too.
	if err := n.waitApplied(ctx, resp.Index); err != nil {
		return nil, err
	}
	return &res, nil
}

// waitApplied waits until the local state reflects log index idx. It also
// wakes on a timer, because entries that never reach the FSM (the no-op a new
// leader commits) advance idx without an apply.
func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	for {
		changed := n.fsm.Watch()
		if n.appliedThrough(idx) {
			return nil
		}
		select {
		case <-changed:
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("committed at index %d, but node %s has not applied it yet: %w",
				idx, n.cfg.NodeID, ctx.Err())
		}
	}
}

// appliedThrough reports whether every entry up to idx that changes the
// state has been applied (appliedUpTo).
func (n *Node) appliedThrough(idx uint64) bool {
	return n.appliedUpTo(idx) >= idx
}

// appliedUpTo returns the FSM's applied index, advanced over the entries
// after it, up to limit, that Raft does not pass to the FSM, such as the
// no-op a new leader commits. It stops at an entry not stored here yet.
func (n *Node) appliedUpTo(limit uint64) uint64 {
	applied := n.fsm.LastApplied()
	for i := applied + 1; i <= limit; i++ {
		var l raft.Log
		if err := n.store.GetLog(i, &l); err != nil {
			break // not here yet
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			break
		}
		applied = i
	}
	return applied
}

// grpcAddrOf finds the gRPC address of a node: from the replicated member
// record, else from the initial peer list. A record whose Raft address
// differs from the Raft configuration's comes from another cluster's
// restored snapshot. The peer list is used in its place until the node
// records its addresses again (keepOwnRecord).
func (n *Node) grpcAddrOf(id string) (string, error) {
	var rec *fsm.ClusterMember
	_ = n.fsm.View(func(tx *fsm.Tx) error {
		rec, _ = tx.ClusterMember(id)
		return nil
	})
	stale := false
	if rec != nil {
		if raftAddr, err := n.raftAddrOf(id); err == nil && raftAddr != rec.RaftAddr {
			stale = true
		}
	}
	if rec != nil && !stale {
		return rec.GRPCAddr, nil
	}
	for _, p := range n.cfg.Peers {
		if p.ID == id {
			return p.GRPCAddr, nil
		}
	}
	if rec != nil {
		return rec.GRPCAddr, nil
	}
	return "", fmt.Errorf("gRPC address of leader %q is unknown", id)
}

// conn returns a mutual TLS connection to another node's gRPC server.
func (n *Node) conn(addr string) (*grpc.ClientConn, error) {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	if c, ok := n.conns[addr]; ok {
		return c, nil
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(n.cfg.Credentials.ClientConfig())),
	}
	if n.cfg.faultNet != nil {
		opts = append(opts, grpc.WithContextDialer(n.cfg.faultNet.dialer(n.cfg.NodeID)))
	}
	c, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial node %s: %w", addr, err)
	}
	n.conns[addr] = c
	return c, nil
}

// errLeaderChanged ends a forwarded call whose leader Raft no longer names.
var errLeaderChanged = errors.New("leader changed during the call")

// watchLeader cancels call with errLeaderChanged once Raft on this node
// names a leader other than leaderID, or none. It returns when call ends.
// It looks at the leader whenever the leader watch reports a change.
func (n *Node) watchLeader(call context.Context, cancel context.CancelCauseFunc, leaderID string) {
	tick := time.NewTicker(n.cfg.HeartbeatTimeout / 2)
	defer tick.Stop()
	for {
		changed := n.leaders.next()
		if _, id := n.raft.LeaderWithID(); string(id) != leaderID {
			cancel(fmt.Errorf("%w: node %s forwarded to %s, and Raft now names %q",
				errLeaderChanged, n.cfg.NodeID, leaderID, id))
			return
		}
		// The ticker only backs up the observer, which registers just after
		// Raft starts.
		select {
		case <-call.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// readyConn returns the connection to another node once it is ready. It
// waits at most two heartbeat timeouts, because a stopped host may drop
// connection attempts instead of refusing them, and gRPC would then hold
// a call until its deadline. Apply then retries with Raft's current
// leader, and gives up after the leader wait.
func (n *Node) readyConn(ctx context.Context, addr string) (*grpc.ClientConn, error) {
	conn, err := n.conn(addr)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	wait, cancel := context.WithTimeout(ctx, 2*n.cfg.HeartbeatTimeout)
	defer cancel()
	for {
		state := conn.GetState()
		switch state {
		case connectivity.Ready:
			return conn, nil
		case connectivity.Idle:
			conn.Connect()
		case connectivity.TransientFailure:
			// gRPC stays in this state until a reconnection succeeds, and
			// its backoff between attempts grows to minutes. The peer may be
			// back, so try again now.
			conn.ResetConnectBackoff()
		case connectivity.Shutdown:
			return nil, status.Errorf(codes.Unavailable, "node %s: connection to %s is closed", n.cfg.NodeID, addr)
		}
		if !conn.WaitForStateChange(wait, state) {
			if err := ctx.Err(); err != nil {
				return nil, status.FromContextError(err).Err()
			}
			return nil, status.Errorf(codes.Unavailable, "node %s timed out connecting to %s (connection %s)",
				n.cfg.NodeID, addr, strings.ToLower(state.String()))
		}
	}
}

// VoterCount returns the number of voters in this node's latest Raft
// configuration, or 0 when it cannot be read.
func (n *Node) VoterCount() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	count := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			count++
		}
	}
	return count
}
