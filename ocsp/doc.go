// Package ocsp is the OCSP responder of the cluster (RFC 6960), following the
// lightweight profile of RFC 5019 and the nonce extension of RFC 9654, which
// obsoletes RFC 8954.
//
// Every node responds from its own copy of the replicated state (package fsm)
// and signs with a key in its own HSM, so a node cut off from the others
// keeps responding from its state and cache until the responses' nextUpdate.
// A response is
//
//   - good, revoked (with time and reason) or unknown for a CertID whose
//     issuer is a CA of this cluster; unknown covers a serial the CA never
//     issued, including one issued by another CA. A SubCA certificate under
//     its root is good, or revoked after fsm.CmdRevokeSubCA;
//   - unauthorized (6) when the issuer is not a CA of this cluster;
//   - malformedRequest (1) for bytes that do not parse, signed requests, and
//     requests for more than one certificate. RFC 5019, 2.1.1 limits a
//     request to one certificate. A response for the first CertID alone would
//     leave the client without the others, so the whole request is rejected;
//   - tryLater (3) while the CA key is missing from this node's HSM, which
//     happens until key distribution reaches the node;
//   - internalError (2) for other failures.
//
// The response repeats the request's CertID hash algorithm (SHA-1, SHA-256,
// SHA-384 or SHA-512). thisUpdate is the current minute minus one minute, or
// the issuance or revocation time when that is later (but not after the
// node's clock), and nextUpdate is thisUpdate plus
// Options.Validity (default one hour). Signed
// responses are cached per CA, hash algorithm and serial, signed again once
// half of the validity has passed, and replaced as soon as the replicated
// status differs from the cached one, such as after a revocation. A cached
// response is served without reading the state until the node applies the
// next batch of log entries or restores a snapshot, after which the next
// request for it reads the status again. A request with a nonce gets a
// freshly signed response that echoes it.
//
// # Signing key
//
// Each SubCA has a designated responder (RFC 6960, 4.2.2.2): a certificate
// that the SubCA signs, with id-kp-OCSPSigning, id-pkix-ocsp-nocheck and a
// validity of a few days, for a responder key that lives in every node's
// HSM. The Designator on the Raft leader generates the key, records it for
// distribution to the other HSMs like a CA key, and commits the certificate
// (fsm.CmdPublishOCSPResponder); it issues a successor once less than
// RenewBefore (default half of four days) remains. A response is signed by
// the newest responder certificate that covers it until its nextUpdate and
// whose key this node holds, and carries that certificate in its certs. A
// CA without one, a node that lacks its key, a root, and a Responder with
// Options.SignWithCAKey sign with the CA's own key instead, and then the
// response carries no certificate. Both kinds name the responder by key
// hash.
//
// # Pre-signing
//
// Run, on every node, pre-signs responses: every second it signs up to 200
// responses for SHA-1 CertIDs, OpenSSL's default, of credentials that have
// not expired, walking the credentials in order of notAfter, and adds them
// to the cache while it has room (Options.CacheEntries, default 100,000). It
// signs again a response past a third of its validity, before requests stop
// using it at half. Once Run has reached a credential, a GET for its SHA-1
// CertID is answered from the cache; at 200 signatures a second, a first
// pass over 100,000 credentials takes at least eight minutes. Requests with SHA-256 CertIDs or
// nonces, credentials beyond the cache's room, and credentials issued by a
// build that predates the expiry index are signed on first request. A
// response for a serial the CA never issued (unknown) is cached only in free
// room, so requests for made-up serials cannot evict real ones.
//
// # Mounting
//
// The node mounts the Responder at "/ocsp": POST requests go to "/ocsp" or
// "/ocsp/", and GET requests carry the base64 DER request after the prefix,
// "/ocsp/{base64}". The GET decoder accepts what clients send: the base64
// percent-encoded (%2F, %2B, %3D) or raw, with raw slashes inside it, extra
// leading slashes, spaces in place of '+', the URL-safe alphabet and missing
// padding. A DER request starts with a SEQUENCE tag, so its base64 starts
// with 'M' and leading slashes are never part of it.
//
// http.ServeMux redirects a path with repeated slashes to a cleaned one, which
// corrupts a GET whose base64 contains "//". Put the Responder in front of
// the mux with Wrap instead of registering it on the mux.
package ocsp
