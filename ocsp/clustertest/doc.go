// Package clustertest holds the tests of package ocsp that run on an
// in-process cluster (anchor/internal/testenv): revocation propagation to
// every member, a member cut off from quorum, and openssl against every
// member with designated responders. They live apart from package ocsp's
// own tests because those open SoftHSM2 through crypto11 directly, and
// package hsm requires that nothing else initialise the PKCS#11 module in a
// process that uses it.
package clustertest
