// Package peering owns the network: the TLS transport that binds each
// connection to a node ID, the set of connections, the dialer with its
// per-peer backoff, and moving chat lines between peers. The wire format
// itself (frames, payloads, strict decoding) is package peering/wire,
// which holds no state; LAN discovery is package peering/lan.
//
// Identity. Both ends of a connection present a self-signed certificate
// for their ed25519 key; TLS 1.3 proves possession, and the key is the node
// ID. The first frame each way is JOIN, and a JOIN that names another ID
// than the TLS key ends the connection. There is no CA and nothing to
// configure.
//
// Connections. Every node listens and dials, itself at most half of
// Config.MaxPeers, so that there is always room for peers that dial in. A
// node keeps at most one connection per peer: of two (a simultaneous
// open), both sides keep the one dialed by the lower node ID, and of two
// dialed by the same node, the one with the lower TLS exporter value. A
// full node says so in its JOIN and sends PEERS and GOODBYE; the dialer
// does not count it as connected. Each connection has a read loop and a write
// loop fed by a bounded queue; a peer whose queue fills is dropped and
// redialed later, so it never slows the others.
//
// Discovery. A JOIN is answered with PEERS; PEERS names nodes that are
// dialed if not connected, and each newly connected peer is announced to
// the others in a one-entry PEERS. The dialer works from the peer table the event
// log projects, so a restarted node redials whom it knew, and each peer's
// failures set its backoff (1 s doubling, jitter, capped), remembered across
// restarts through DIAL_FAILED events.
//
// LAN discovery (discover.go, package lan). With Config.LANDiscovery,
// nodes advertise themselves by multicast DNS and dial the nodes they find
// on the local network: by ID, like PEERS hearsay, on an open network, by
// address, like --peer, on a private one, whose records carry only a tag
// of the key.
//
// Reachability (reach.go). Each inbound peer's observed address (the IP
// its connection came from, with its JOIN's port) is dialed back once, a
// TLS handshake that must prove its key; until that works the address is
// neither passed on nor dialed, so nodes behind NAT are not handed out.
// REACH tells the peer the address it was seen at and whether it could be
// dialed, which it shows. Two inbound peers that both cannot be dialed
// are introduced to each other in PUNCH frames, and both connect at once
// from their listening ports: a simultaneous TCP open through their NATs
// (punch.go).
//
// Chat. A line is appended to the log before it is shown or sent. A
// received CHAT is decoded strictly (package wire: unknown fields, duplicate
// keys and trailing data are violations), verified (a drained batch at a
// time, one signature per chained run of an origin, as caught-up lines
// are: below; a bad one is refused alone and ends the connection once the
// good ones are stored), appended once per (origin,
// origin seq) unless it forks its origin's chain (refused and logged, not
// held against the peer: eventlog's doc says why), relayed to
// every other peer that can read it (a chained line needs protocol
// version 3, wire.MinVersion; older peers get every other line) in the
// canonical encoding of what was verified, never the bytes received, so
// lines cross a partial mesh, padding dies at the first node, and
// duplicates die at the first node that has seen them (before their
// signatures are even checked), and then shown: the next peers do not wait
// for this node's screen. Own lines go through an outbox that commits them
// in batches, so a paste costs a few fsyncs, not one per line, signs each
// batch while the one before is being committed (eventlog.Log.Sign), so
// the log's writer does not wait for signatures, and sends them
// before they are shown, but for a private message, whose delivery notice
// must not come before it.
//
// Catch-up (catchup.go, sync.go). Each connection has a catchup of its
// own, which owns its limiters, its answer deadline and what its request
// in flight asked for. On connect and every Config.SyncInterval, each side
// runs a round: between version 2 peers it first reconciles, asking with
// SYNCQ for fingerprints of the origins under ID prefixes (per child
// prefix: a count and the sum of per-origin digests, eventlog.Summaries)
// and splitting the prefixes whose fingerprints differ until it holds at
// most 8 origins under each; then it sends SYNC for those prefixes only:
// its watermark, highest seq and holes per origin there, packed into
// frames by their encoded size, at most 1 MiB per request. A version 1
// peer gets the whole-log SYNC it expects (at most 300 origins per frame,
// 20,000 in all). The other side answers with CATCHUP frames of what is
// missing within the request's scope, oldest first, behind live traffic
// (to a peer of version 4, runs of one origin's chained chat lines go as
// LINES frames instead, the origin written once and each Prev the
// receiver can compute left out: wire.FrameLines), then SYNCED, which
// counts the lines sent and repeats the request's round number so that a
// late one cannot end a newer request. It answers at most twice back to back
// and once per interval after, reading the log and sending under its own
// row and byte limiters. CATCHUP is free of the chat budget only for the seqs the
// request said it lacks (its holes, and up to 200,000 past its highest
// seqs or of origins it holds nothing of), paced by a byte limiter. Of
// origins it holds nothing of, an answer brings free at most as many
// under each prefix as the peer's fingerprints said it holds there (a
// node that holds little still reconciles first, to learn these counts),
// and at most Config.CatchupAuthors (100,000) per connection, a bucket
// refilled over each SyncInterval, and as many for the whole node, a
// bucket refilled at Config.CatchupAuthorsPerHour (10,000), whatever the
// peer claims; a version 1
// peer, which claims nothing, at most that many per request. A request asks only
// for the prefixes whose counts fit in what both buckets hold, so an honest
// answer always fits, and a request that left prefixes out is followed by
// the next round at once. Any other CATCHUP line pays as a live line: chat
// budget and new-author budget, with the penalty of a flood. Each line of
// a LINES frame takes the path of a CATCHUP line, charged its share of
// the frame's bytes (conn.onLines). An answer
// silent for Config.SyncTimeout is given up on. The node shows what came as one block once every peer
// it asked has answered or given up, or once the block reaches 1 MiB or
// has waited four answer deadlines, so no peer holds lines hostage. Any
// peer can fill in any author's lines, since signatures make them
// trustworthy wherever they come from; HAVE asks peers to start a round
// at once (at most as often as answers are allowed).
//
// Lines are checked one signature per chained run of an origin
// (eventlog.VerifyChained), live and caught-up lines each apart, since a
// burst or a catch-up brings many lines of few authors and a run's last
// signature vouches for every line before it. A chained line can be its
// origin's although its own signature fails, when the origin signed a
// successor chaining to it (eventlog's doc, "Hash chains"); a node that
// checked such a line without its successor, because its batch ended
// between them, would refuse it, penalize the honest peer that relayed
// it, and disagree with nodes whose batches held both. So a line that
// fails and that nothing in its batch vouches for, while it is the newest
// of its origin there (eventlog.VerifyChainedOpen), is not refused at
// once: it is stored if the log holds the successor that chains to it,
// refused as a fork (not the peer's fault) if the log holds another, and
// otherwise held back (pendingChain) and checked again with the next lines
// of its origin and of its kind on the connection, which vouch for it or
// not. One that a later line of the batch does not chain to is still
// looked up in the log before it is refused (askTheLog): an answer leaves
// out what the node said it holds, which may be its voucher. A caught-up
// one is refused as the peer's violation only when the answer ends
// without a voucher: SYNCED, or the round given up on at its deadline
// (Config.SyncTimeout without a sign of life, whether reconciling or
// awaiting the answer: catchup.endHeldBack). A live one,
// which no answer ends, is refused as the peer's violation when a later
// line of its origin from the peer does not chain to it, and at once if
// the peer is its origin: an honest node signs every line of its own. An
// honest peer cannot leave one unvouched: an answer sends each origin's
// lines together, in ascending seq (answerSync reads them with eventlog
// ByOrigin), before SYNCED; a relay sends the lines of a batch in order,
// so a line taken on its successor's word goes right before that
// successor; and a node holds such a line only with its voucher
// (eventlog.Log.AppendVouched stores a line taken on a successor's word
// only with that successor; a line it leaves out because the successor
// was refused here is checked on its own signature and stored if that
// holds; the log drops no chat line). Held-back lines are bounded per
// connection (maxHeldBackLines, maxHeldBackBytes; past them the oldest are
// dropped unblamed, to come again in a later round) and go with the
// connection.
//
// Why fingerprints of ID prefixes rather than version vectors sent only
// for changed feeds (SSB's EBT): EBT keeps per-peer state of which
// clocks the other has seen, and after a restart or on a new connection
// falls back to sending every clock, which is what made SYNC cost O(authors)
// per connection; an author is also a free key here, so the number of
// clocks is the attacker's to choose. Range-based reconciliation
// (Negentropy) costs O(differences × log authors) on every connection,
// fresh or not, and needs no state but the sorted per-origin digests,
// which eventlog derives in memory (about 0.6 s for 100,000 authors, at
// the first sync after start) and keeps current from each commit. Fixed
// hex-nibble prefixes instead of Negentropy's count-balanced ranges make
// both sides' splits agree without sending bounds; an attacker who grinds
// keys into one prefix only adds levels (at most 16). Sums rather than XOR
// of digests, as in Negentropy, so a difference cannot be cancelled by
// linear algebra over chosen items.
//
// Private messages (private.go) are SEALED messages, signed and numbered
// in the sender's own sequence and sealed to the recipient's key, so they
// are relayed, deduplicated and caught up exactly like chat lines; the
// recipient's signed ACK comes back the same way. A node learns of nodes
// beyond its neighbours because each passes on what a PEERS told it that
// was news (gossip.go), so any node can be named in /msg.
//
// Private networks. With Config.NetworkKey set, each side sends AUTH right
// after TLS, before JOIN: an HMAC of the TLS exporter value and its own
// node ID under the key, so the proof holds for this connection only. A
// keyed node sends JOIN only to a peer whose AUTH checks out; anyone else
// gets GOODBYE "network key mismatch" and learns no name, no peers, no
// line, and leaves nothing in the log.
//
// Limits. Every connection pays for what it makes the node spend
// (budget.go): bytes of frames (Config.ByteRate), live CHAT, NICK,
// SEALED, ACK, PEERS, SYNC, SYNCQ, SYNCFP and HAVE frames (Config.ChatRate), units of gossip work
// such as PEERS entries looked up (Config.GossipRate, a slow budget apart
// from chat), node IDs new to the table (Config.NewPeerRate; the rest of
// a PEERS is ignored) and authors new to the log (Config.NewAuthorRate in
// live lines, Config.CatchupAuthors in catch-up this node asked for),
// each a token bucket of golang.org/x/time/rate. Past a budget the read
// loop waits, so TCP slows the sender, and a peer that keeps it waiting
// beyond Config.FloodGrace is disconnected and its node ID refused for
// Config.FloodPenalty, as is a peer whose connection ends in a protocol
// violation. The send and ingest queues are bounded in bytes
// (Config.SendQueueBytes, IngestQueueBytes); past a part of its own, a
// connection's queue of received lines or of catch-up frames shares one
// room with every other connection (room.go). Node-wide, fresh node IDs
// dialing in, JOINs of peers refused as full and DIAL_FAILED events are
// rate-bounded, and the dialer forgets hearsay that never answered before
// any peer that did, so a flood of fake names never stops it from
// learning. An inbound JOIN marked full is a violation: full answers a
// dial. Penalties fall on node IDs, never on addresses; addresses only cap
// concurrent connections. Log lines about one misbehaving address or peer
// are spaced by Config.LogEvery. docs/SECURITY.md has the whole threat
// model and a table of every resource and its bound.
//
// The package never touches the database: it talks to the Log interface
// it declares, which *eventlog.Log satisfies.
package peering
