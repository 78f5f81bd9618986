// Command anchorctl administers an Anchor CA cluster over the admin gRPC API
// of any of its nodes: organizations, realms, chains, SubCAs, services, EAB
// keys, certificates, CRLs, the audit trail and the cluster itself.
//
// It authenticates with an admin certificate of the cluster-internal CA.
// The node address and the certificate files come from flags, else from
// ANCHOR_ADDR, ANCHOR_TLS_CERT, ANCHOR_TLS_KEY and ANCHOR_TLS_CA, else from
// the connection file that `make run` writes (data/cluster.json). Private
// keys are read only from files. `anchorctl --help` lists the commands and
// the exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], newStreams(os.Stdin, os.Stdout, os.Stderr), os.Getenv)
	stop()
	os.Exit(code)
}
