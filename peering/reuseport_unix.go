//go:build unix

package peering

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort lets the listening socket and the sockets that punch through
// NAT share the listening port (punch.go): a port-preserving NAT then maps
// the punch to the same outside port the node's peers already see.
func reusePort(network, address string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

const canPunch = true
