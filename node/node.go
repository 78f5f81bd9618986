package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"

	"anchor/acme"
	"anchor/api"
	"anchor/ca"
	"anchor/cluster"
	"anchor/fsm"
	"anchor/hsm"
	"anchor/ocsp"
)

// Node is a running anchor-node.
type Node struct {
	cfg       *Config
	logger    *slog.Logger
	hsm       *hsm.HSM
	cluster   *cluster.Node
	issuer    *ca.Issuer
	keys      *ca.KeyManager
	acme      *acme.Server
	responder *ocsp.Responder

	grpcServer *grpc.Server
	httpServer *http.Server
	acmeServer *http.Server
	grpcLis    net.Listener
	httpLis    net.Listener
	acmeLis    net.Listener

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start opens the HSM, joins the cluster and starts serving. It returns once
// the listeners are bound; key distribution and bootstrap continue in the
// background.
func Start(cfg *Config, logger *slog.Logger) (*Node, error) {
	n := &Node{cfg: cfg, logger: logger.With("node", cfg.NodeID)}
	if err := n.start(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) start() error {
	var err error
	if n.hsm, err = hsm.Open(n.cfg.HSM, n.logger); err != nil {
		return fmt.Errorf("open HSM: %w", err)
	}
	// Listen before Raft starts so that forwarded writes find the server.
	if n.grpcLis, err = net.Listen("tcp", n.cfg.GRPCAddr); err != nil {
		return fmt.Errorf("listen on grpc_addr %s: %w", n.cfg.GRPCAddr, err)
	}
	if n.httpLis, err = net.Listen("tcp", n.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("listen on http_addr %s: %w", n.cfg.HTTPAddr, err)
	}
	acmeCert, err := tls.LoadX509KeyPair(n.cfg.ACME.TLSCertFile, n.cfg.ACME.TLSKeyFile)
	if err != nil {
		return fmt.Errorf("load acme.tls_cert_file and acme.tls_key_file: %w", err)
	}
	n.acmeLis, err = tls.Listen("tcp", n.cfg.ACMEAddr, &tls.Config{
		MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{acmeCert},
	})
	if err != nil {
		return fmt.Errorf("listen on acme_addr %s: %w", n.cfg.ACMEAddr, err)
	}
	creds, err := cluster.LoadCredentials(n.cfg.TLS)
	if err != nil {
		return err
	}
	if n.cluster, err = cluster.Start(n.cfg.clusterConfig(creds), n.logger); err != nil {
		return err
	}
	st := n.cluster.State()
	n.issuer = ca.NewIssuer(st, n.cluster, n.hsm, n.cfg.NodeID, n.logger)
	n.keys = ca.NewKeyManager(st, n.cluster, n.hsm, n.cfg.NodeID, n.cluster.IsLeader, n.logger)

	n.grpcServer = grpc.NewServer(grpc.Creds(n.cluster.GRPCServerCredentials()))
	n.cluster.RegisterServices(n.grpcServer)
	api.NewServer(n.cluster, n.hsm, ca.URLs(n.cfg.PublicURLs), n.logger).Register(n.grpcServer)
	acmeHandler, err := n.acmeHandler()
	if err != nil {
		return err
	}
	n.httpServer = &http.Server{Handler: n.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
	n.acmeServer = &http.Server{Handler: acmeHandler, ReadHeaderTimeout: 10 * time.Second}

	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.goRun("grpc server", func() error { return n.grpcServer.Serve(n.grpcLis) })
	n.goRun("http server", func() error { return serveHTTP(n.httpServer, n.httpLis) })
	n.goRun("acme server", func() error { return serveHTTP(n.acmeServer, n.acmeLis) })
	n.goRun("node registration", func() error { return n.register(ctx) })
	n.goRun("key manager", func() error { n.keys.Run(ctx); return nil })
	n.runBackground(ctx)
	n.logger.Info("node started", "grpc_addr", n.cfg.GRPCAddr, "http_addr", n.cfg.HTTPAddr,
		"acme_addr", n.cfg.ACMEAddr)
	return nil
}

func serveHTTP(srv *http.Server, lis net.Listener) error {
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (n *Node) goRun(name string, fn func() error) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := fn(); err != nil && !errors.Is(err, context.Canceled) {
			n.logger.Error(name+" stopped", "error", err)
		}
	}()
}

func (n *Node) register(ctx context.Context) error {
	if len(n.cfg.Join) > 0 && !n.cluster.HasMembership() {
		if err := n.cluster.JoinCluster(ctx, n.cfg.Join, n.cfg.Nonvoter); err != nil {
			return err
		}
	}
	err := n.keys.Register(ctx, fsm.Node{
		RaftAddr: n.cfg.RaftAddr, GRPCAddr: n.cfg.GRPCAddr, HTTPAddr: n.cfg.HTTPAddr,
	})
	if err != nil || n.cfg.Bootstrap == nil {
		return err
	}
	return n.bootstrap(ctx)
}

// Cluster returns the node's Raft member.
func (n *Node) Cluster() *cluster.Node { return n.cluster }

// Issuer returns the node's certificate issuer.
func (n *Node) Issuer() *ca.Issuer { return n.issuer }

// HSM returns the node's HSM.
func (n *Node) HSM() *hsm.HSM { return n.hsm }

// HTTPAddr returns the bound HTTP address, useful when configured with port 0.
func (n *Node) HTTPAddr() string { return n.httpLis.Addr().String() }

func shutdownHTTP(srv *http.Server, lis net.Listener) {
	if srv == nil {
		if lis != nil {
			lis.Close()
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// Close stops serving, leaves Raft running no longer, and closes the HSM.
func (n *Node) Close() error {
	if n.cancel != nil {
		n.cancel()
	}
	shutdownHTTP(n.httpServer, n.httpLis)
	shutdownHTTP(n.acmeServer, n.acmeLis)
	if n.grpcServer != nil {
		n.grpcServer.Stop()
	} else if n.grpcLis != nil {
		n.grpcLis.Close()
	}
	if n.acme != nil {
		n.acme.Close()
	}
	n.wg.Wait()
	var errs []error
	if n.cluster != nil {
		errs = append(errs, n.cluster.Shutdown())
	}
	if n.hsm != nil {
		errs = append(errs, n.hsm.Close())
	}
	n.logger.Info("node stopped")
	return errors.Join(errs...)
}
