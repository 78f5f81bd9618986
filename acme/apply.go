package acme

import (
	"context"
	"fmt"
	"time"

	"anchor/fsm"
)

// localApplyTimeout bounds how long a request waits for this node to apply a
// command that the leader already committed.
const localApplyTimeout = 10 * time.Second

// propose applies a command through the log and decodes the handler's
// result into v (which may be nil). A rejected command returns its
// *fsm.Error.
func (s *Server) propose(ctx context.Context, typ fsm.CommandType, payload, v any) error {
	return s.proposeAs(ctx, "", typ, payload, v)
}

// proposeAs is propose for a command that enters the audit trail under
// actor, such as "acme-account:ID".
func (s *Server) proposeAs(ctx context.Context, actor string, typ fsm.CommandType, payload, v any) error {
	cmd, err := fsm.NewCommand(typ, payload)
	if err != nil {
		return err
	}
	cmd.Actor = actor
	res, err := s.apply.Apply(ctx, cmd)
	if err != nil {
		return fmt.Errorf("apply %s: %w", typ, err)
	}
	return res.Decode(v)
}

// awaitLocal waits until cond holds on this node's state. Apply returns once
// the leader committed, possibly before this follower applied the entry, so
// without the wait a client could get a URL that this node cannot serve yet.
func (s *Server) awaitLocal(ctx context.Context, cond func(tx *fsm.Tx) bool) error {
	ctx, cancel := context.WithTimeout(ctx, localApplyTimeout)
	defer cancel()
	for {
		applied := s.state.Watch()
		var ok bool
		if err := s.state.View(func(tx *fsm.Tx) error {
			ok = cond(tx)
			return nil
		}); err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-applied:
		case <-ctx.Done():
			return fsm.Errorf(fsm.CodeUnavailable,
				"this node has not applied the change yet: retry the request")
		}
	}
}
