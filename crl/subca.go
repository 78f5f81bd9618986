package crl

import (
	"context"
	"fmt"

	"anchor/fsm"
)

// RevokeSubCA commits the revocation of a SubCA certificate with a
// CRLReason code such as 2 (cACompromise). The root's CRL lists the SubCA
// once the Publisher of the leader has run, and OCSP responses for it under
// the root change at once.
func RevokeSubCA(ctx context.Context, apply Applier, caID string, reason int) error {
	cmd := fsm.MustCommand(fsm.CmdRevokeSubCA, fsm.RevokeSubCA{CAID: caID, Reason: reason})
	res, err := apply.Apply(ctx, cmd)
	if err != nil {
		return fmt.Errorf("commit revocation of SubCA %s: %w", caID, err)
	}
	return res.Decode(nil)
}
