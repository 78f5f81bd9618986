package fsm

import (
	"encoding/json"
	"fmt"
	"time"
)

// CommandVersion is the envelope version this build writes and applies. A node
// that meets a newer version stops applying instead of guessing its meaning.
// Version 2 added RequestID: a version-1 node would apply a retried copy
// twice where a version-2 node applies it once. Version 3 checks the
// identifiers of eab.create against the SubCA policy, which a version-2
// node would store unchecked.
const CommandVersion = 3

// CommandType names a replicated operation.
type CommandType string

// Command is one entry of the replicated log.
type Command struct {
	Version uint16          `json:"v"`
	Type    CommandType     `json:"type"`
	Time    time.Time       `json:"time"`
	Payload json.RawMessage `json:"payload"`
	// Actor names who asked for the command, such as "admin:alice" or
	// "acme-account:ID". A command with an actor leaves an AuditEvent.
	Actor string `json:"actor,omitempty"`
	// RequestID is the same on every attempt to commit one command. A
	// copy whose request ID was applied before returns the first copy's
	// result and changes nothing (see requests.go).
	RequestID string `json:"rid,omitempty"`
}

// WithActor sets the command's actor and returns the command.
func (c *Command) WithActor(actor string) *Command {
	c.Actor = actor
	return c
}

// NewCommand encodes payload as a command of the given type, stamped with the
// proposer's clock.
func NewCommand(typ CommandType, payload any) (*Command, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", typ, err)
	}
	return &Command{
		Version: CommandVersion,
		Type:    typ,
		Time:    time.Now().UTC().Truncate(time.Second),
		Payload: raw,
	}, nil
}

// MustCommand is NewCommand for payloads that always encode, such as plain
// structs of strings, numbers and byte slices. It panics on an encoding error.
func MustCommand(typ CommandType, payload any) *Command {
	cmd, err := NewCommand(typ, payload)
	if err != nil {
		panic(err)
	}
	return cmd
}

// Encode returns the bytes stored in the Raft log.
func (c *Command) Encode() ([]byte, error) {
	return json.Marshal(c)
}

// DecodeCommand parses a Raft log entry.
func DecodeCommand(data []byte) (*Command, error) {
	var c Command
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("decode command: %w", err)
	}
	if c.Version == 0 || c.Version > CommandVersion {
		return nil, &UnknownVersionError{Version: c.Version, Type: c.Type}
	}
	return &c, nil
}

// UnknownVersionError reports a log entry written by a newer build. The node
// must be upgraded before it can apply the rest of the log.
type UnknownVersionError struct {
	Version uint16
	Type    CommandType
}

func (e *UnknownVersionError) Error() string {
	return fmt.Sprintf("command %q has version %d but this build applies versions up to %d: upgrade this node",
		e.Type, e.Version, CommandVersion)
}

// Result is the outcome of one applied command, returned to the proposer. It
// is plain data so that a follower can forward a write and relay the result.
type Result struct {
	Data json.RawMessage `json:"data,omitempty"`
	Err  *Error          `json:"err,omitempty"`
}

// Decode unmarshals the result data into v, or returns the command's error.
func (r *Result) Decode(v any) error {
	if r.Err != nil {
		return r.Err
	}
	if v == nil || len(r.Data) == 0 {
		return nil
	}
	return json.Unmarshal(r.Data, v)
}
