// Command anchor-ceremony runs a key ceremony: it creates a chain's AnchorCA root and
// its SubCAs in a node's HSM, commits the chain to the running cluster, and prints the
// SHA-256 fingerprint of every new CA certificate.
//
//	anchor-ceremony -config /etc/anchor/node.json -spec ceremony.json [-out dir]
//
// It runs on a node's host with that node's configuration file and acts as that node.
// It opens the node's HSM, whose PIN comes from the file or variable the configuration
// names, never from a flag. It commits through the cluster's internal Apply RPC with
// the node's cluster certificate. The node itself keeps running, and its key manager
// finds the new keys in its token and wraps them for the other nodes. docs/examples/ceremony.json
// is an example specification.
package main

import (
	"context"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"anchor/ca"
	"anchor/cluster"
	"anchor/hsm"
	"anchor/node"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line flags.
type options struct {
	configPath string
	specPath   string
	outDir     string
	timeout    time.Duration
}

// run executes the command and returns the process exit code: 0 on success, 1 when
// the ceremony failed, 2 for invalid usage or input.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "anchor-ceremony: %v\n", err)
		return 2
	}
	cfg, err := node.LoadConfig(opts.configPath)
	if err != nil {
		fmt.Fprintf(stderr, "anchor-ceremony: %v\n", err)
		return 2
	}
	spec, err := ca.LoadCeremonySpec(opts.specPath)
	if err != nil {
		fmt.Fprintf(stderr, "anchor-ceremony: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil)).With("node", cfg.NodeID)

	ctx, cancel := context.WithTimeout(context.Background(), opts.timeout)
	defer cancel()
	result, err := ceremony(ctx, cfg, spec, logger)
	if err != nil {
		logger.Error("ceremony failed", "chain", spec.Org+"/"+spec.Realm+"/"+spec.Chain,
			"error", err)
		return 1
	}
	printResult(stdout, result)
	if opts.outDir != "" {
		if err := writeCertificates(opts.outDir, result); err != nil {
			logger.Error("write certificates failed", "dir", opts.outDir, "error", err)
			return 1
		}
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	flags := flag.NewFlagSet("anchor-ceremony", flag.ContinueOnError)
	flags.SetOutput(stderr)
	opts := &options{}
	flags.StringVar(&opts.configPath, "config", "",
		"path of the node's JSON configuration file (required)")
	flags.StringVar(&opts.specPath, "spec", "", "path of the ceremony specification (required)")
	flags.StringVar(&opts.outDir, "out", "",
		"directory to write the new CA certificates to as PEM files (optional)")
	flags.DurationVar(&opts.timeout, "timeout", 5*time.Minute,
		"time limit for the whole ceremony, RSA key generation included")
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	if opts.configPath == "" || opts.specPath == "" {
		return nil, fmt.Errorf("-config and -spec are required")
	}
	return opts, nil
}

// ceremony opens the node's HSM and cluster credentials and runs the ceremony.
func ceremony(ctx context.Context, cfg *node.Config, spec *ca.CeremonySpec,
	logger *slog.Logger) (*ca.CeremonyResult, error) {
	creds, err := cluster.LoadCredentials(cfg.TLS)
	if err != nil {
		return nil, err
	}
	if creds.NodeID() != cfg.NodeID {
		return nil, fmt.Errorf("tls certificate names node %q, not node_id %q",
			creds.NodeID(), cfg.NodeID)
	}
	h, err := hsm.Open(cfg.HSM, logger)
	if err != nil {
		return nil, fmt.Errorf("open HSM: %w", err)
	}
	defer func() {
		if err := h.Close(); err != nil {
			logger.Warn("close HSM failed", "error", err)
		}
	}()
	applier := newRemoteApplier(cfg.GRPCAddr, creds, logger)
	defer applier.Close()

	logger.Info("ceremony started", "chain", spec.Org+"/"+spec.Realm+"/"+spec.Chain,
		"grpc_addr", cfg.GRPCAddr)
	// The ceremony's commands enter the audit trail under this node.
	audited := ca.ActorApplier{Applier: applier, Actor: "ceremony:" + cfg.NodeID}
	result, err := ca.RunCeremony(ctx, audited, h, cfg.NodeID, ca.URLs(cfg.PublicURLs), spec)
	if err != nil {
		return nil, err
	}
	logger.Info("ceremony committed", "chain", result.ChainID,
		"root_fingerprint", result.Root.Fingerprint)
	return result, nil
}

// printResult writes one line per CA: its ID, key ID and SHA-256 fingerprint.
func printResult(w io.Writer, result *ca.CeremonyResult) {
	fmt.Fprintf(w, "chain %s\n", result.ChainID)
	fmt.Fprintf(w, "root %s key %s sha256 %s\n", result.Root.ID, result.Root.KeyID,
		result.Root.Fingerprint)
	for _, sub := range result.SubCAs {
		fmt.Fprintf(w, "subca %s key %s sha256 %s\n", sub.ID, sub.KeyID, sub.Fingerprint)
	}
}

// writeCertificates writes root.pem and one <name>.pem per SubCA into dir.
func writeCertificates(dir string, result *ca.CeremonyResult) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{"root.pem": result.Root.CertDER}
	for _, sub := range result.SubCAs {
		files[filepath.Base(sub.ID)+".pem"] = sub.CertDER
	}
	for name, der := range files {
		data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
