package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	anchorv1 "anchor/api/anchorv1"
)

// SaveSnapshot writes a consistent copy of this node's replicated state to w
// after a linearizable read barrier, so the copy contains every write
// acknowledged before the call. It returns the log index the copy reflects.
func (n *Node) SaveSnapshot(ctx context.Context, w io.Writer) (index uint64, size int64, err error) {
	if err := n.LinearizableRead(ctx); err != nil {
		return 0, 0, err
	}
	index, size, err = n.fsm.Backup(w)
	if err != nil {
		return 0, 0, fmt.Errorf("write snapshot: %w", err)
	}
	n.logger.Info("snapshot saved", "index", index, "bytes", size)
	return index, size, nil
}

// RestoreSnapshot replaces the state of every member with the snapshot in r.
// It must run on the leader; followers receive the state by Raft snapshot
// installation.
func (n *Node) RestoreSnapshot(ctx context.Context, r io.Reader, size int64) (uint64, error) {
	if n.raft.State() != raft.Leader {
		leaderAddr, leaderID := n.raft.LeaderWithID()
		return 0, status.Errorf(codes.FailedPrecondition,
			"restore must run on the leader: %s at %s", leaderID, leaderAddr)
	}
	timeout := 5 * time.Minute
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	// Raft refuses a restore until the leader has applied its latest
	// configuration entry, which a newly elected leader may not have yet.
	// A barrier waits for that instead of failing the operator's request.
	start := time.Now()
	if err := n.raft.Barrier(timeout).Error(); err != nil {
		return 0, status.Errorf(codes.Unavailable, "wait for the leader to apply its log before restoring: %v", err)
	}
	timeout -= time.Since(start)
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: size}
	if err := n.raft.Restore(meta, r, timeout); err != nil {
		if errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrNotLeader) {
			// Nothing was restored; the client may send it to the new leader.
			return 0, status.Errorf(codes.FailedPrecondition, "restore snapshot: node %s lost leadership: %v",
				n.cfg.NodeID, err)
		}
		return 0, status.Errorf(codes.Internal, "restore snapshot: %v", err)
	}
	idx := n.raft.LastIndex()
	n.logger.Warn("cluster state replaced from snapshot", "index", idx, "bytes", size)
	return idx, nil
}

// LinearizableRead returns once this node's state reflects every write
// committed before the call: the leader confirms its leadership with a
// quorum, and a follower waits until it has applied the leader's commit
// index.
func (n *Node) LinearizableRead(ctx context.Context) error {
	idx, err := n.readIndex(ctx)
	if err != nil {
		return err
	}
	return n.waitApplied(ctx, idx)
}

// readIndex returns a commit index that covers every write committed
// before the call, confirmed by the leader: this node, or the leader that
// a follower calls with Internal.ReadIndex.
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	if n.raft.State() == raft.Leader {
		return n.confirmLeadership(ctx)
	}
	_, leaderID := n.raft.LeaderWithID()
	if leaderID == "" {
		return 0, status.Errorf(codes.Unavailable, "%v", &NoLeaderError{NodeID: n.cfg.NodeID,
			Voters: n.VoterCount(), Last: ErrNoLeader})
	}
	addr, err := n.grpcAddrOf(string(leaderID))
	if err != nil {
		return 0, status.Error(codes.Unavailable, err.Error())
	}
	conn, err := n.readyConn(ctx, addr)
	if err != nil {
		return 0, err
	}
	resp, err := anchorv1.NewInternalClient(conn).ReadIndex(ctx, &anchorv1.ReadIndexRequest{})
	if err != nil {
		return 0, err
	}
	return resp.Index, nil
}

// CaughtUp reports whether this node's state has caught up since the node
// started (see catchUp). Until then its state may lack writes committed
// while it was down, such as revocations.
func (n *Node) CaughtUp() bool { return n.caughtUp.Load() }

// catchUp marks the node caught up once it has applied every write that a
// leader confirms was committed when the node called readIndex. It calls
// readIndex again until a leader confirms an index, however long that
// takes. A node that restarted while the majority is down cannot tell
// which revocations it missed, so it must not report itself caught up. A node that was running
// when it lost the majority is caught up already and keeps serving.
func (n *Node) catchUp() {
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	warned := false
	backoff := 50 * time.Millisecond
	var idx uint64
	for {
		ask, askCancel := context.WithTimeout(ctx, n.cfg.LeaderWait)
		var err error
		idx, err = n.readIndex(ask)
		askCancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return // stopped
		}
		if !warned && time.Since(start) >= n.cfg.LeaderWait {
			warned = true
			n.logger.Warn("no leader has confirmed the cluster's commit index since start; OCSP "+
				"answers tryLater until one does", "waited", time.Since(start).Round(time.Millisecond),
				"error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
	if err := n.waitApplied(ctx, idx); err != nil {
		return // stopped
	}
	n.caughtUp.Store(true)
	n.logger.Info("state caught up with the cluster after start", "index", idx,
		"took", time.Since(start).Round(time.Millisecond))
}

// confirmLeadership commits a barrier entry and returns the commit index
// after it, which covers every write committed before the call. A quorum
// must store an entry appended after the call began, so a response to a
// heartbeat sent earlier cannot confirm a leadership that has since
// passed to another node (Raft's VerifyLeader counts such responses).
func (n *Node) confirmLeadership(ctx context.Context) (uint64, error) {
	done := make(chan error, 1)
	go func() { done <- n.raft.Barrier(0).Error() }()
	select {
	case err := <-done:
		if err != nil {
			return 0, status.Errorf(codes.Unavailable, "confirm leadership of node %s: %v", n.cfg.NodeID, err)
		}
		return n.raft.CommitIndex(), nil
	case <-ctx.Done():
		// The barrier ends by itself when it commits or leadership is lost.
		return 0, status.Errorf(status.FromContextError(ctx.Err()).Code(), "confirm leadership of node %s: %v",
			n.cfg.NodeID, ctx.Err())
	}
}
