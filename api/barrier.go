package api

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"anchor/cluster"
)

// readBarrier returns once this node's state reflects every write committed
// before the call. While no leader confirms the read, it retries for the
// node's leader wait, the same limit that cluster.Node.Apply puts on writes.
// Then it returns UNAVAILABLE with a cluster.NoLeaderError.
func (s *Server) readBarrier(ctx context.Context) error {
	start := time.Now()
	deadline := start.Add(s.leaderWait)
	backoff := 20 * time.Millisecond
	for {
		// The attempt ends with the leader wait, so a request to a leader
		// that stopped responding cannot hold the read until the caller's
		// deadline.
		attempt, cancel := context.WithDeadline(ctx, deadline)
		err := s.node.LinearizableRead(attempt)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() == nil && applyTimedOut(err):
			// The leader confirmed the read, and only this node's apply is
			// behind, so wait for it as long as the caller does.
			return s.node.LinearizableRead(ctx)
		case !leaderUnreachable(err):
			return err
		}
		s.logger.Debug("read barrier retry", "error", err)
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return s.noLeader(time.Since(start), err)
		}
		select {
		case <-ctx.Done():
			return s.noLeader(time.Since(start), err)
		case <-time.After(min(backoff, time.Until(deadline))):
		}
		backoff = min(2*backoff, 250*time.Millisecond)
	}
}

// leaderUnreachable reports whether a barrier failed for want of a leader.
// No leader is known (UNAVAILABLE), the node asked was no longer the leader
// (FAILED_PRECONDITION), or the leader did not respond in time.
func leaderUnreachable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.FailedPrecondition, codes.DeadlineExceeded:
		return true
	}
	return false
}

// applyTimedOut reports whether a barrier failed after the leader responded,
// while this node waited to apply the leader's commit index. That wait
// fails with a plain error that wraps the context's, where a request to
// the leader fails with a gRPC status.
func applyTimedOut(err error) bool {
	_, isStatus := status.FromError(err)
	return !isStatus && errors.Is(err, context.DeadlineExceeded)
}

// noLeader returns the UNAVAILABLE error of a read that found no leader
// within waited, in the words of the cluster.NoLeaderError of writes.
func (s *Server) noLeader(waited time.Duration, last error) error {
	e := &cluster.NoLeaderError{
		NodeID: s.node.ID(), Voters: s.node.VoterCount(), Waited: waited, Last: lastCause(last),
	}
	return status.Error(codes.Unavailable, e.Error())
}

// lastCause returns the message of a barrier's last failure without its
// gRPC status prefix. A failure that is itself a no-leader error becomes
// cluster.ErrNoLeader, so the message does not repeat itself.
func lastCause(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if strings.HasPrefix(st.Message(), cluster.ErrNoLeader.Error()) {
		return cluster.ErrNoLeader
	}
	return errors.New(st.Message())
}
