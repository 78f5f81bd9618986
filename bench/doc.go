// Package bench holds what `make bench` runs: load generators for ACME and
// OCSP, the peers it compares Anchor with (Pebble, `openssl ocsp`, cfssl
// ocspserve, a bare hashicorp/raft cluster), and the report written to
// docs/benchmarks.md.
//
// run.sh is the entry point. It builds anchor-node and the peers into a
// temporary directory, runs cmd/anchorbench (processes on loopback) and the
// in-process benchmarks in inproc (build tag bench), three runs of each, and
// renders the medians. Every run is bounded in time and sends traffic to
// 127.0.0.1 only. BENCH_QUICK=1 shortens every run for a smoke test.
//
// The protocols measured are ACME (RFC 8555), OCSP (RFC 6960 with the RFC
// 5019 profile and the RFC 9654 nonce) and X.509 CRLs (RFC 5280).
package bench
