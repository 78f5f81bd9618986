// Package acmeload drives full ACME issuances (RFC 8555, 7.4) against a
// server from many accounts at once. It uses lego's protocol client
// (github.com/go-acme/lego/v5/acme/api) without lego's retry and wait
// logic, so that every server gets the same requests at the same client
// cost. A flow is: new order; unless the order is already ready, each
// authorization fetched and, when pending, its http-01 challenge responded
// to and polled; finalize; the order polled until valid; and the
// certificate downloaded.
//
// Skipping the authorizations of a ready order, which RFC 8555 allows,
// matters for Pebble v2.10.3: its authorization handler holds the
// authorization's lock while it reads the store, and order creation holds
// the store's read lock while it reads authorizations, so the two deadlock
// once a store writer queues between them.
//
// Polls run every PollInterval and ignore Retry-After, so that a server that
// finalizes asynchronously, such as Pebble, costs its real latency plus at
// most one interval.
package acmeload
