package wire

// FrameAuth carries the network-key proof; only nodes with a network key
// send it, as their first frame.
const FrameAuth = "AUTH"

// AuthMsg is the payload of AUTH: the hex HMAC proof described above.
type AuthMsg struct {
	Proof string `json:"proof"`
}
