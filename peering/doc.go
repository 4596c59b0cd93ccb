// Package peering owns the network: the TLS transport that binds each
// connection to a node ID, the wire frames, the set of connections, the
// dialer with its per-peer backoff, and moving chat lines between peers.
//
// Identity. Both ends of a connection present a self-signed certificate
// for their ed25519 key; TLS 1.3 proves possession, and the key is the node
// ID. The first frame each way is JOIN, and a JOIN that names another ID
// than the TLS key ends the connection. There is no CA and nothing to
// configure.
//
// Connections. Every node listens and dials. A node keeps at most one
// connection per peer: of two (a simultaneous open), both sides keep the one
// dialed by the lower node ID. Each connection has a read loop and a write
// loop fed by a bounded queue; a peer whose queue fills is dropped and
// redialed later, so it never slows the others.
//
// Discovery. A JOIN is answered with PEERS; PEERS names nodes that are
// dialed if not connected. The dialer works from the peer table the event
// log projects, so a restarted node redials whom it knew, and each peer's
// failures set its backoff (1 s doubling, jitter, capped), remembered across
// restarts through DIAL_FAILED events.
//
// Chat. A line is appended to the log before it is shown or sent. A
// received CHAT is verified, appended once per (origin, origin seq), shown,
// and relayed unchanged to every other peer, so lines cross a partial mesh
// and duplicates die at the first node that has seen them.
//
// Private networks. With Config.NetworkKey set, each side sends AUTH right
// after TLS, before JOIN: an HMAC of the TLS exporter value and its own
// node ID under the key, so the proof holds for this connection only. A
// keyed node sends JOIN only to a peer whose AUTH checks out; anyone else
// gets GOODBYE "network key mismatch" and learns no name, no peers, no
// line, and leaves nothing in the log.
//
// Limits. Every connection has a chat budget (Config.ChatRate, ChatBurst)
// for live CHAT and NICK; past it the read loop waits, so TCP slows the
// sender, and a peer that keeps it waiting beyond Config.FloodGrace is
// disconnected and its node ID refused for Config.FloodPenalty. Penalties
// fall on node IDs, never on addresses; addresses only cap concurrent
// connections. Log lines about one misbehaving address or peer are spaced
// by Config.LogEvery. docs/SECURITY.md has the whole threat model.
//
// The package never touches the database: it talks to the Log interface
// it declares, which *eventlog.Log satisfies.
package peering
