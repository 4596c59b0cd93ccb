//go:build !unix

package peering

import "syscall"

// reusePort is a no-op where SO_REUSEPORT is not to be had; such a node
// does not punch through NAT (punch.go).
func reusePort(network, address string, rc syscall.RawConn) error { return nil }

const canPunch = false
