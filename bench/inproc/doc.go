// Package inproc holds the in-process benchmarks of `make bench`, as tests
// behind the build tag bench so that `go test ./...` skips them:
//
//   - TestBenchCAPath: ca.Issuer.Issue end to end (CSR check, SoftHSM2
//     signature, Raft commit) on one node and on three, against raw
//     signatures with the same HSM key;
//   - TestBenchRaft: commits through cluster.Node.Apply (three nodes, mutual
//     TLS) against a bare hashicorp/raft cluster with the same store and
//     transport and a trivial FSM;
//   - TestBenchMemory: state.db size and resident memory after committing N
//     credentials;
//   - TestBenchProfileOCSP and TestBenchProfileACME: CPU profiles of the
//     OCSP responder and the ACME server under load.
//
// bench/run.sh runs them with BENCH_OUT naming the results file; see
// docs/benchmarks.md.
package inproc
