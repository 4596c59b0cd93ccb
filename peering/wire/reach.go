package wire

// FrameReach tells a peer the address its connection came from and whether
// a dial back to it worked.
const FrameReach = "REACH"

// ReachMsg is the payload of REACH.
type ReachMsg struct {
	// Addr is the peer's observed IP with the port its JOIN named.
	Addr string `json:"addr"`
	// Reachable says whether a dial back to Addr completed a handshake
	// with the peer's key.
	Reachable bool `json:"reachable"`
}
