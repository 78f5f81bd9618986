package fsm

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

const bucketAudit = "audit"

// AuditEvent records one command proposed on behalf of an actor: an
// administrator, an ACME account or a node. Events are kept in log order.
type AuditEvent struct {
	Index uint64      `json:"index"`
	Time  time.Time   `json:"time"`
	Actor string      `json:"actor"`
	Type  CommandType `json:"type"`
	// Target is the object the command acted on, taken from its payload
	// by auditTargets, such as a certificate serial, a CA or chain ID, an
	// EAB key ID or an ACME order ID. It is empty for command types without
	// one and in events recorded before targets were added.
	Target  string `json:"target,omitempty"`
	Outcome string `json:"outcome"` // "ok" or "error"
	Error   string `json:"error,omitempty"`
}

func auditKey(index uint64) string { return hex.EncodeToString(uint64Bytes(index)) }

// appendAudit records cmd's outcome when the command names an actor.
func appendAudit(tx *Tx, index uint64, cmd *Command, failure error) error {
	if cmd.Actor == "" {
		return nil
	}
	ev := AuditEvent{
		Index: index, Time: cmd.Time, Actor: cmd.Actor, Type: cmd.Type,
		Target: auditTarget(cmd), Outcome: "ok",
	}
	if failure != nil {
		ev.Outcome, ev.Error = "error", failure.Error()
	}
	return tx.put(bucketAudit, auditKey(index), ev)
}

// auditTarget returns the target of cmd's audit event, or "" when its type
// has none or its payload does not decode. It reads only the payload, so
// every node records the same target.
func auditTarget(cmd *Command) string {
	target := auditTargets[cmd.Type]
	if target == nil {
		return ""
	}
	return target(cmd.Payload)
}

// auditTargets names the target of each command type. A type mapped to nil
// has no target. No entry may return secret material: EAB and nonce HMAC
// keys, wrapped keys and signatures stay out of the audit trail.
var auditTargets = map[CommandType]func(payload json.RawMessage) string{
	CmdCreateOrganization: targetOf(func(p *CreateOrganization) string { return p.Name }),
	CmdCreateRealm:        targetOf(func(p *CreateRealm) string { return p.Org + "/" + p.Name }),
	CmdCreateChain: targetOf(func(p *CreateChain) string {
		return ChainID(p.Org, p.Realm, p.Name)
	}),
	CmdCreateSubCA: targetOf(func(p *CreateSubCA) string {
		return p.SubCA.ChainID + "/" + p.SubCA.Name // the ID the handler gives it
	}),
	CmdRevokeSubCA:   targetOf(func(p *RevokeSubCA) string { return p.CAID }),
	CmdCreateService: targetOf(func(p *CreateService) string { return ServiceID(p.Org, p.Name) }),
	CmdCreateEAB:     targetOf(func(p *EABKey) string { return p.KeyID }),
	CmdAddMember:     targetOf(func(p *AddMember) string { return memberKey(p.Org, p.Identity) }),
	CmdRemoveMember:  targetOf(func(p *RemoveMember) string { return memberKey(p.Org, p.Identity) }),

	CmdRegisterNode:     targetOf(func(p *Node) string { return p.ID }),
	CmdSetClusterMember: targetOf(func(p *ClusterMember) string { return p.ID }),
	CmdCreateKey:        targetOf(func(p *Key) string { return p.ID }),
	CmdShareKey:         targetOf(func(p *KeyShare) string { return p.KeyID }),
	CmdConfirmKey:       targetOf(func(p *ConfirmKey) string { return p.KeyID }),
	CmdRetireKey:        targetOf(func(p *RetireKey) string { return p.KeyID }),

	CmdIssueCredential: targetOf(func(p *IssueCredential) string { return certificateSerial(p.DER) }),
	CmdRevoke:          targetOf(func(p *Revoke) string { return p.Serial }),
	// A CRL payload embeds its CRLScope, which decodes alone without the
	// CRL's DER.
	CmdPublishCRL:           targetOf(func(p *CRLScope) string { return p.String() }),
	CmdConfigureCRLShards:   targetOf(func(p *ConfigureCRLShards) string { return p.CAID }),
	CmdPublishOCSPResponder: targetOf(func(p *OCSPResponder) string { return p.CAID }),

	CmdACMECreateAccount:    targetOf(func(p *CreateACMEAccount) string { return p.Account.ID }),
	CmdACMEUpdateAccount:    targetOf(func(p *UpdateACMEAccount) string { return p.ID }),
	CmdACMEChangeAccountKey: targetOf(func(p *ChangeACMEAccountKey) string { return p.ID }),
	CmdACMECreateOrder:      targetOf(func(p *CreateACMEOrder) string { return p.Order.ID }),
	CmdACMEProcessOrder:     targetOf(func(p *ACMEOrderTransition) string { return p.ID }),
	CmdACMEFailOrder:        targetOf(func(p *ACMEOrderTransition) string { return p.ID }),
	CmdACMERetryOrder:       targetOf(func(p *ACMEOrderTransition) string { return p.ID }),
	CmdACMEDeactivateAuthz:  targetOf(func(p *DeactivateACMEAuthz) string { return p.ID }),
	CmdACMEUpdateChallenge:  targetOf(func(p *UpdateACMEChallenge) string { return p.ID }),
	CmdACMERetryChallenge:   targetOf(func(p *RetryACMEChallenge) string { return p.ID }),
	CmdACMEClaimChallenge:   targetOf(func(p *ClaimACMEChallenge) string { return p.ID }),
	// The nonce key's payload is the HMAC key itself, and a redeemed nonce
	// identifies nothing that an operator would look up.
	CmdACMECreateNonceKey: nil,
	CmdACMERedeemNonce:    nil,
}

// targetOf returns a target function that decodes the payload into a P,
// which may declare only the fields it reads, and passes it to pick.
func targetOf[P any](pick func(*P) string) func(json.RawMessage) string {
	return func(payload json.RawMessage) string {
		var p P
		if err := json.Unmarshal(payload, &p); err != nil {
			return ""
		}
		return pick(&p)
	}
}

// certificateSerial returns the serial number of a DER certificate as
// SerialKey writes it, or "" when the DER does not start like a
// certificate. It reads no further than the serial.
func certificateSerial(der []byte) string {
	input := cryptobyte.String(der)
	var cert, tbs cryptobyte.String
	serial := new(big.Int)
	if !input.ReadASN1(&cert, cbasn1.SEQUENCE) ||
		!cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.ReadASN1Integer(serial) {
		return ""
	}
	return SerialKey(serial)
}

// AuditEvents returns up to limit events after log index after, oldest
// first; actor filters by actor when not empty.
func (t *Tx) AuditEvents(after uint64, actor string, limit int) ([]AuditEvent, error) {
	var out []AuditEvent
	var err error
	b := t.tx.Bucket([]byte(bucketAudit))
	if b == nil {
		return nil, nil
	}
	c := b.Cursor()
	for k, v := c.Seek([]byte(auditKey(after + 1))); k != nil && len(out) < limit; k, v = c.Next() {
		var ev AuditEvent
		if err = json.Unmarshal(v, &ev); err != nil {
			return nil, fmt.Errorf("decode audit event %s: %w", k, err)
		}
		if actor == "" || ev.Actor == actor {
			out = append(out, ev)
		}
	}
	return out, nil
}
