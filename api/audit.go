package api

import (
	"context"
	"fmt"

	anchorv1 "anchor/api/anchorv1"
	"anchor/fsm"
)

// audit implements anchorv1.AuditServer.
type audit struct {
	anchorv1.UnimplementedAuditServer
	*Server
}

// ListAuditEvents lists the audit trail. Events name no organization, so an
// organization admin reads only the events it caused itself.
func (s *audit) ListAuditEvents(ctx context.Context,
	req *anchorv1.ListAuditEventsRequest) (*anchorv1.ListAuditEventsResponse, error) {
	c, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	actor := req.Actor
	if c.org != "" {
		if actor != "" && actor != c.actor() {
			return nil, s.deny(ctx, c, readAccess, fmt.Sprintf("the audit events of %q", actor))
		}
		actor = c.actor()
	}
	limit, err := pageSize("limit", req.Limit)
	if err != nil {
		return nil, err
	}
	out := &anchorv1.ListAuditEventsResponse{}
	err = s.view(ctx, func(tx *fsm.Tx) error {
		events, err := tx.AuditEvents(req.AfterIndex, actor, limit)
		for i := range events {
			out.Events = append(out.Events, auditEventPB(&events[i]))
			out.NextAfterIndex = events[i].Index
		}
		return err
	})
	return out, toStatus(err)
}
