// Command anchor-devcluster runs a local cluster of anchor-node processes on
// loopback, each with its own SoftHSM2 token, and prints how to use it. It
// is what `make run` starts.
//
//	anchor-devcluster -data-dir ./data -nodes 3 -node-bin ./bin/anchor-node
//
// A second run with the same data directory reuses the tokens, keys and
// chain of the first. Only one run at a time may use a data directory.
// SIGUSR1 starts stopped nodes again. SIGINT, SIGTERM and SIGHUP (a closed
// terminal) stop every node.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"anchor/internal/localcluster"
)

func main() {
	dataDir := flag.String("data-dir", "./data", "directory for node data, tokens and cluster.json")
	nodes := flag.Int("nodes", 3, "number of nodes")
	bin := flag.String("node-bin", "./bin/anchor-node", "path of the anchor-node binary")
	http01 := flag.Int("http01-port", 5002, "port that http-01 validation connects to")
	flag.Parse()
	if err := run(*dataDir, *nodes, *bin, *http01); err != nil {
		fmt.Fprintf(os.Stderr, "anchor-devcluster: %v\n", err)
		os.Exit(1)
	}
}

func run(dataDir string, nodes int, bin string, http01 int) error {
	unlock, err := lockDataDir(dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	layout, err := localcluster.Prepare(localcluster.Options{
		DataDir: dataDir, Nodes: nodes, HTTP01Port: http01,
	})
	if err != nil {
		return err
	}
	// These signals would end this process and leave its nodes running, so
	// they are caught from the start.
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM,
		syscall.SIGHUP)
	defer cancel()
	restart := make(chan os.Signal, 1)
	signal.Notify(restart, syscall.SIGUSR1)
	defer signal.Stop(restart)
	// A node may exit before StartWatched returns the cluster.
	var started atomic.Pointer[localcluster.Cluster]
	c, err := localcluster.StartWatched(layout, bin, func(i int, err error) {
		reportExit(layout, started.Load(), i, err)
	})
	if err != nil {
		return err
	}
	started.Store(c)
	defer func() {
		fmt.Println("stopping nodes...")
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "anchor-devcluster: %v\n", err)
		}
	}()

	readyCtx, readyCancel := context.WithTimeout(ctx, 2*time.Minute)
	defer readyCancel()
	fmt.Printf("starting %d nodes in %s ...\n", nodes, layout.DataDir)
	info, err := c.WaitReady(readyCtx)
	if ctx.Err() != nil {
		fmt.Println("interrupted before the cluster was ready")
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster did not become ready: %w", err)
	}
	printInfo(layout, info, http01, c.PID)

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-restart:
			restarted, err := c.StartStopped()
			if err != nil {
				fmt.Fprintf(os.Stderr, "anchor-devcluster: %v\n", err)
			}
			if len(restarted) == 0 {
				fmt.Println("anchor-devcluster: every node is running")
				continue
			}
			var named []string
			for i, n := range layout.Nodes {
				if slices.Contains(restarted, n.ID) {
					named = append(named, fmt.Sprintf("%s (process %d)", n.ID, c.PID(i)))
				}
			}
			fmt.Printf("anchor-devcluster: started %s again; a restarted node catches up from the others\n",
				strings.Join(named, ", "))
		}
	}
}

// reportExit prints that node i exited by itself, whether the
// remaining nodes still form a majority, and how to start it again. c is
// nil while the cluster is starting.
func reportExit(l *localcluster.Layout, c *localcluster.Cluster, i int, err error) {
	n := l.Nodes[i]
	status := "exit status 0"
	if err != nil {
		status = err.Error()
	}
	if c == nil {
		fmt.Fprintf(os.Stderr, "\nanchor-devcluster: %s exited (%s) while starting; its log is %s.\n",
			n.ID, status, n.LogPath)
		return
	}
	total, running := len(l.Nodes), c.RunningCount()
	state := "They are a majority, so the cluster keeps issuing and answering."
	switch {
	case running == 0:
		state = "ACME, OCSP and CRLs are down until a node starts again."
	case running <= total/2:
		state = "They are not a majority: OCSP and CRLs are still served, but issuance and other writes fail."
	}
	fmt.Fprintf(os.Stderr, "\nanchor-devcluster: %s exited (%s); its log is %s.\n"+
		"%d of %d nodes are running. %s\n"+
		"Start stopped nodes again with: kill -USR1 %d\n",
		n.ID, status, n.LogPath, running, total, state, os.Getpid())
}

func printInfo(l *localcluster.Layout, info *localcluster.Info, http01 int, pid func(int) int) {
	fmt.Printf("\nAnchor cluster ready: %d nodes, chain %s\n\n", len(info.Nodes), info.ChainID)
	for i, n := range info.Nodes {
		fmt.Printf("%s\n  ACME directory  %s\n  OCSP            %s\n  CRLs            %s\n  admin (gRPC)    %s\n  log             %s\n  process         %d (kill %d stops this node)\n",
			n.ID, n.ACMEDirectory, n.OCSPURL, n.CRLBaseURL, n.AdminAddr, n.Log, pid(i), pid(i))
	}
	fmt.Printf("\nRoot certificate  %s\n", info.RootCertPath)
	fmt.Printf("ACME TLS CA       %s (trust it for the ACME HTTPS listeners)\n", info.ACMECACert)
	fmt.Printf("EAB key ID        %s\nEAB HMAC key      %s\n", info.EAB.KeyID, info.EAB.HMACKey)
	fmt.Println("                  (binds the first account registered with it; for another, run")
	fmt.Printf("                  bin/anchorctl --connection %s/cluster.json eab create --org default --realm default --chain default)\n",
		l.DataDir)
	fmt.Printf("Connection file   %s/cluster.json\n", l.DataDir)
	fmt.Printf("\nCluster status:\n  bin/anchorctl --connection %s/cluster.json cluster status\n", l.DataDir)
	fmt.Printf("\nIssue a certificate for localhost with certbot (http-01 on port %d):\n", http01)
	fmt.Printf("  REQUESTS_CA_BUNDLE=%s \\\n  certbot certonly --server %s \\\n    --eab-kid=%s --eab-hmac-key=%s \\\n"+
		"    --standalone --http-01-port %d -d localhost \\\n"+
		"    --agree-tos --register-unsafely-without-email --non-interactive \\\n"+
		"    --config-dir %s/certbot --work-dir %s/certbot --logs-dir %s/certbot\n",
		info.ACMECACert, info.Nodes[1].ACMEDirectory, info.EAB.KeyID, info.EAB.HMACKey, http01, l.DataDir, l.DataDir, l.DataDir)
	live := l.DataDir + "/certbot/live/localhost"
	fmt.Println("\nThen check its status on every node:")
	for _, n := range info.Nodes {
		fmt.Printf("  openssl ocsp -issuer %s/chain.pem -cert %s/cert.pem -url %s -CAfile %s\n",
			live, live, n.OCSPURL, info.RootCertPath)
	}
	fmt.Printf("\nPress Ctrl-C to stop the cluster. After a node stops, kill -USR1 %d starts it again.\n",
		os.Getpid())
}

// lockDataDir creates dataDir if needed and takes an exclusive lock on a file
// in it, so that a second run on the same directory stops at once instead of
// starting nodes on ports that the first run's nodes use. The lock ends with
// the process; unlock releases it earlier.
func lockDataDir(dataDir string) (unlock func(), err error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dataDir, "devcluster.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("%s is in use by another make run (process %s): stop it, or "+
			"use another DATA_DIR", dataDir, strings.TrimSpace(string(holder)))
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
