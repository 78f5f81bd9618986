// Package acme is the ACME server of the cluster (RFC 8555).
//
// Every node serves ACME from its own copy of the replicated state: reads use
// the local fsm.FSM, and every change (accounts, orders, authorizations,
// challenges, finalization, revocation) is a command applied through the Raft
// log. Each chain has its own directory at
// /{org}/{realm}/x509/{chain}/acme/directory.
//
// Accounts need External Account Binding (RFC 8555, 7.3.4). An EAB key may
// pre-authorize identifiers; other identifiers are validated with http-01,
// dns-01 or tls-alpn-01 (RFC 8737), including IP identifiers (RFC 8738).
// Renewal information and the "replaces" field follow RFC 9773. Problem
// documents follow RFC 7807 with the ACME error types of RFC 8555, 6.7.
//
// Replay nonces are authenticated with an HMAC key kept in the replicated
// state, so a nonce issued by one node is accepted by any other (see
// nonceSource). After a write, a handler waits until this node has applied
// it, so every URL in a response can be read back from the same node.
//
// A challenge is validated by one node at a time, its validating node, which
// the log records with a deadline for its next commit. A failed attempt is
// committed with its problem while the challenge stays processing, up to
// Options.ValidationAttempts attempts in all (RFC 8555, 8.2). A client's
// new POST to a processing challenge moves the validation to the node that
// receives it, which retries at once. When a validating node stops before it
// commits, the leader takes the validation over once the deadline has passed
// (Options.IsLeader).
package acme
