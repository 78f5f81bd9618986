// Command anchor-setup prepares the containers of the Docker deployment
// (docker-compose.yml at the top of the repository). It has two commands:
//
//	anchor-setup certs -ca-dir DIR -tls-dir DIR -admin-dir DIR -nodes node1,node2,node3
//	anchor-setup node  -id node1 -nodes node1,node2,node3 -public-urls URL,... [-bootstrap]
//
// certs runs once per cluster, in the compose file's init service: it creates
// the cluster-internal CA, and for every node a mutual TLS certificate (Raft
// and gRPC) and an ACME HTTPS server certificate, plus one admin client
// certificate for anchorctl. Files that exist are kept, so it can run on
// every `docker compose up`.
//
// node runs in each node container before anchor-node starts: it initializes
// the node's SoftHSM2 token on first start, with user and security officer
// PINs generated then and stored only in files beside the token, and writes
// the node's configuration file.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: anchor-setup certs|node [flags]")
		return 2
	}
	var err error
	switch args[0] {
	case "certs":
		err = runCerts(args[1:], stderr)
	case "node":
		err = runNode(args[1:], stderr)
	default:
		fmt.Fprintf(stderr, "anchor-setup: unknown command %q: use certs or node\n", args[0])
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "anchor-setup %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// listFlag is a comma-separated flag value; empty elements are dropped.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = nil
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("anchor-setup "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
