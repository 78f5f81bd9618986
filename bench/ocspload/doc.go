// Package ocspload is a closed-loop HTTP/1.1 load generator for OCSP
// responders (RFC 6960, RFC 5019). Each connection sends one request, reads
// the whole response and sends the next, so the rate it measures is what
// the responder sustains at that concurrency.
//
// It writes requests and parses responses on raw TCP connections instead of
// net/http, because on a two-core machine that runs the responder too,
// net/http's per-request cost would be a large share of the measurement.
package ocspload
