// Package peers starts the programs that the benchmarks compare Anchor
// with, each as a process on loopback: Pebble (ACME), `openssl ocsp` and
// cfssl ocspserve (OCSP). The binaries are built by bench/run.sh from the
// Go module proxy, or come from Debian (openssl), and are never committed.
package peers
