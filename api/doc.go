// Package api serves the administrative gRPC API of a node and holds the
// protocol buffer definitions of every gRPC service; the generated Go code
// lives in api/anchorv1 and is regenerated with `make proto`.
//
// The admin API (organizations, realms, chains, SubCAs, services, EAB keys
// as RFC 8555, 7.3.4 defines them, certificates, CRLs as RFC 5280 defines
// them, and the audit trail) is served by every node on its gRPC listener.
// Callers authenticate with an admin certificate of the cluster-internal CA
// whose organizational unit carries a role: cluster-admin, read-only, or
// org-admin/<org> for one organization. Writes are committed through
// cluster.Node.Apply, which forwards them to the Raft leader, and carry the
// caller as their actor ("admin:" and the certificate's common name), so the
// audit trail records who made each change. Reads first wait for a
// linearizable read barrier, so they see every write acknowledged before the
// call.
package api
