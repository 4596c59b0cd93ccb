package wire

import "github.com/p2pchat/p2pchat/eventlog"

// FramePunch asks a node to connect to another at once.
const FramePunch = "PUNCH"

// PunchMsg is the payload of PUNCH.
type PunchMsg struct {
	// ID is the node to connect to.
	ID eventlog.NodeID `json:"id"`
	// Name is that node's name, to show.
	Name string `json:"name"`
	// Addr is where that node's connections come from, with its
	// listening port.
	Addr string `json:"addr"`
}
