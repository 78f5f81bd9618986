// Package crl signs, replicates and serves the certificate revocation lists
// of the cluster's CAs (RFC 5280, section 5), including delta CRLs (RFC
// 5280, 5.2.4).
//
// # Scopes
//
// A SubCA's leaves are partitioned into shards: a serial belongs to shard
// ShardOf(serial, n), the serial modulo n. The shard count n is a power of
// two up to 256, 16 by default, and fixed once the SubCA issues its first
// certificate (fsm.Tx.CRLShards). Each shard has its own CRL, and a
// leaf names its shard's CRL in its CRL distribution points, so a client
// downloads about 1/n of the revocations, and a revocation re-signs one
// shard. Every CA also has a full CRL of all its revocations: a root's CRL
// lists its revoked SubCAs (fsm.CmdRevokeSubCA, RevokeSubCA), and a SubCA's
// full CRL serves clients that want one file. A SubCA's full CRL is signed
// again after each change only while it has at most
// PublisherOptions.FullRebuildMaxEntries entries (default 10,000); above
// that it is signed again only before its nextUpdate, and its delta CRL
// carries the changes in between.
//
// Every scope has a complete CRL and a delta CRL. The delta lists the
// revocations applied since its base, a complete CRL of the same scope that
// stays the base until it is due for refresh, and carries a critical delta
// CRL indicator with the base's cRLNumber. Complete and delta CRLs of a
// scope share one number sequence, and a delta always follows the complete
// CRL it was published with, because OpenSSL combines a delta only with a
// complete CRL of a lower number. Complete CRLs carry a freshest CRL
// extension naming their delta.
//
// # Publication
//
// The Publisher runs on every node but works only while the node is the Raft
// leader. It reads revocations from the state's revocation index, which is
// ordered by CA, serial octet and serial, and by log index for deltas, so
// no check reads credentials. It signs with the CA's HSM key and commits
// each CRL through the replicated log (fsm.CmdPublishCRL), and every node
// then serves the same bytes with the same cRLNumber. Only scopes whose
// revocations changed, or whose CRLs near their nextUpdate, are signed.
//
// A complete CRL drops the entry of an expired certificate once the
// previous complete CRL of its scope listed it after the expiry, as RFC
// 5280, 3.3 allows, so CRLs do not grow without bound. The revocation stays
// in the state, and OCSP keeps returning revoked for it.
//
// # URLs
//
// The Handler serves, for CA ID "org/realm/chain/ca" under "/crl/":
//
//	org/realm/chain/ca.crl                full CRL     URL
//	org/realm/chain/ca.delta.crl          its delta    DeltaURLs
//	org/realm/chain/ca/{shard}.crl        shard CRL    ShardURL, ShardURLs
//	org/realm/chain/ca/{shard}.delta.crl  its delta    DeltaURLs
//
// The ca package writes ShardURLs(Policy.CRLURLs, ShardOf(serial, n)) into
// a leaf's CRL distribution points and FreshestCRLExtension of their
// DeltaURLs into its extensions.
//
// # Extensions
//
// Each CRL carries the authority key identifier, the cRLNumber and a critical
// issuing distribution point (RFC 5280, 5.2.5), identical in a complete CRL
// and its delta. A SubCA CRL sets onlyContainsUserCerts. A shard CRL's
// distributionPoint lists the URLs of its shard, which are the CRL
// distribution points of the leaves it covers, so that OpenSSL finds the
// same scope in both. A SubCA's full CRL has no distributionPoint, so it
// checks every leaf whichever shard the leaf names. A root CRL sets
// onlyContainsCACerts and has no distributionPoint, because OpenSSL with
// -crl_check_all also checks the self-signed root against it, and a root
// without a CRL distribution point matches only a CRL without one.
//
// OpenSSL 3.0 reads delta CRLs with -use_deltas. Without -extended_crl it
// may also take a delta CRL in place of a complete one, so the tests that
// check the combination of a base and its delta pass both flags.
package crl
