// Package cluster runs a node's membership in the Raft cluster: the
// hashicorp/raft instance with its raft-boltdb log store and file snapshots,
// bootstrap of a new cluster, and Apply, which commits a replicated command
// from any node by forwarding it to the leader over gRPC.
package cluster
