package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	anchorv1 "anchor/api/anchorv1"
	"anchor/cluster"
	"anchor/fsm"
)

// remoteApplier commits commands from outside the node process. It requests the
// leader's address from the local node (seed) with Cluster.Status and sends the command
// to the leader's Internal.Apply, authenticated with the node's cluster certificate. It retries while
// no leader is known or leadership moves, until the context ends.
//
// NOTE: the admin API has no ceremony call, because the keys must be generated in
// this node's HSM by a process on its host. Internal.Apply accepts any command from a
// node certificate, so only the node's operator, who holds that key, can run it.
type remoteApplier struct {
	seed   string
	creds  credentials.TransportCredentials
	logger *slog.Logger
	conns  map[string]*grpc.ClientConn
}

func newRemoteApplier(seed string, creds *cluster.Credentials,
	logger *slog.Logger) *remoteApplier {
	return &remoteApplier{seed: seed, creds: credentials.NewTLS(creds.ClientConfig()),
		logger: logger, conns: map[string]*grpc.ClientConn{}}
}

// Apply commits cmd on the leader and returns its result.
func (a *remoteApplier) Apply(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	data, err := cmd.WithRequestID().Encode()
	if err != nil {
		return nil, fmt.Errorf("encode command: %w", err)
	}
	backoff := 50 * time.Millisecond
	for {
		res, err := a.applyOnce(ctx, data)
		if err == nil || !retryable(err) {
			return res, err
		}
		a.logger.Warn("apply failed, retrying", "type", cmd.Type, "error", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("apply %s: %w (last error: %w)", cmd.Type, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (a *remoteApplier) applyOnce(ctx context.Context, data []byte) (*fsm.Result, error) {
	leader, err := a.leaderAddr(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := a.conn(leader)
	if err != nil {
		return nil, err
	}
	resp, err := anchorv1.NewInternalClient(conn).Apply(ctx, &anchorv1.ApplyRequest{Command: data})
	if err != nil {
		return nil, fmt.Errorf("apply on leader %s: %w", leader, err)
	}
	var res fsm.Result
	if err := json.Unmarshal(resp.Result, &res); err != nil {
		return nil, fmt.Errorf("decode result from %s: %w", leader, err)
	}
	return &res, nil
}

// errNoLeader means the seed node reported no leader, or none with a gRPC address.
var errNoLeader = errors.New("no leader known")

// leaderAddr returns the leader's gRPC address as the seed node reports it.
func (a *remoteApplier) leaderAddr(ctx context.Context) (string, error) {
	conn, err := a.conn(a.seed)
	if err != nil {
		return "", err
	}
	st, err := anchorv1.NewClusterClient(conn).Status(ctx, &anchorv1.StatusRequest{})
	if err != nil {
		return "", fmt.Errorf("cluster status from %s: %w", a.seed, err)
	}
	for _, m := range st.GetMembers() {
		if m.GetLeader() && m.GetGrpcAddress() != "" {
			return m.GetGrpcAddress(), nil
		}
	}
	return "", fmt.Errorf("%w by node %s", errNoLeader, a.seed)
}

func (a *remoteApplier) conn(addr string) (*grpc.ClientConn, error) {
	if c, ok := a.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(a.creds))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	a.conns[addr] = c
	return c, nil
}

// Close closes every connection.
func (a *remoteApplier) Close() {
	for _, c := range a.conns {
		_ = c.Close()
	}
}

// retryable reports a failure that may pass when the cluster elects a leader or the
// leader becomes reachable.
func retryable(err error) bool {
	if errors.Is(err, errNoLeader) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.FailedPrecondition, codes.DeadlineExceeded:
		return true
	}
	return false
}
