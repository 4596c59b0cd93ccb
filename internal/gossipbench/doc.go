// Package gossipbench measures libp2p gossipsub on the workload of
// p2pchat's BenchmarkChain3 (peering/bench_test.go), so that the two can be
// run in turns on the same machine and compared as a ratio measured in the
// same run rather than as absolute rates from a shared, noisy machine.
//
// The workload is Chain3's: three hosts in one process on 127.0.0.1 over
// TCP and TLS, ed25519 identities, connected as the chain A - B - C and
// nothing else (no discovery, no peer exchange; the connection graph is
// checked before and after the timed part). All three subscribe to one
// topic; A publishes b.N lines of workload.Text, 100 bytes each, as fast as
// Publish takes them, each signed at A and verified at B and at C
// (gossipsub's default StrictSign; Publish also checks, at A, the
// signature it has just made); the timer stops when C has received
// every line. The figures are msgs/s at C and the process's CPU time per
// line, every host together, as Chain3 reports them.
//
// Two variants. "lossless" sizes every queue on the path (each host's
// outbound queue per peer, its validation queue, each subscription's
// buffer) to hold the whole run, and fails if C misses a line: the rate
// gossipsub reaches when it is asked to deliver everything, which is what
// a chat must do. "defaults" keeps gossipsub's queue sizes, which drop
// messages under a burst by design, and reports the fraction lost: once A
// has published every line, C waits until no new line has arrived for a
// few seconds and counts what is missing as lost.
//
// What differs from Chain3, and favours gossipsub: nothing is stored.
// Chain3's nodes append each line to a bbolt log with fsync on, at every
// hop, before relaying it; here a line exists only in memory. What
// favours p2pchat: gossipsub checks three signatures per line where
// Chain3 checks two, and its connections carry a stream multiplexer
// (yamux) inside the TLS session, which p2pchat's do not.
//
// It is a module of its own (internal/gossipbench/go.mod, with p2pchat
// replaced by the repository root) so that libp2p and its dependencies
// stay out of the product's go.mod and go.sum: only this benchmark needs
// them. The package has no code outside its test; docs/BENCHMARKS.md
// ("Gossipsub on the same chain") says how to run it beside Chain3.
package gossipbench
