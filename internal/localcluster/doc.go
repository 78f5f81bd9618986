// Package localcluster runs a cluster of anchor-node processes on loopback,
// each with its own SoftHSM2 token and data directory. `make run` and the
// end-to-end tests use it.
package localcluster
