// Package fsm is the replicated state machine of the cluster.
//
// Every change to organizations, realms, chains, CA keys, certificates, ACME
// objects and revocations is a Command appended to the Raft log. Each node
// applies committed commands, in log order, to its own bbolt database, so every
// node can serve reads (ACME, OCSP, CRL) from local disk.
//
// Apply is deterministic: a handler reads only the command and the current
// state, never the clock or the network. Timestamps travel inside commands,
// set by the node that proposes them.
package fsm
