// Package node assembles one anchor-node process: its HSM, its Raft member,
// the CA, and the HTTP (ACME, OCSP, CRL) and gRPC servers, from a Config.
package node
