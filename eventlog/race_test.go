//go:build race

package eventlog_test

// raceEnabled: the race detector slows the long simulations, which then
// run shorter.
const raceEnabled = true
