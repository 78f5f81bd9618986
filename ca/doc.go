// Package ca creates chains, SubCAs and services, and issues certificates.
//
// A chain lives in a realm of an organization: one self-signed AnchorCA root
// and any number of SubCAs that the root signs (CreateChain, CreateSubCA).
// Root and SubCA keys are generated in the HSM of the node that creates
// them, and the root key signs SubCA certificates there. The keys reach the
// other nodes' HSMs only wrapped (see KeyManager).
//
// A SubCA is a template for its leaves (fsm.Policy): key types and sizes,
// maximum validity, key usages and extended key usages, subject attributes,
// and name constraints (RFC 5280, 4.2.1.10), which its certificate carries
// in a critical extension and which Issuer checks again at issuance. A
// request outside the template is rejected with a message naming the rule
// and the value that broke it, and nothing is written to the log.
//
// A service (CreateService) chooses a chain and SubCA per realm and gets an
// EAB key (RFC 8555, 7.3.4) in each; Request.ServiceID keeps its
// certificates to its identifiers.
//
// Certificates follow RFC 5280: 128-bit random serials reserved through the
// replicated log before a certificate is released, UTCTime validity dates
// through 2049 and GeneralizedTime from 2050 (4.1.2.5, as crypto/x509
// encodes them), AKI and SKI, AIA with the cluster's OCSP and caIssuers
// URLs, and CRL distribution points. profiles.go lists the profiles and the
// CA/Browser Forum lints that do not apply to a private hierarchy.
package ca
