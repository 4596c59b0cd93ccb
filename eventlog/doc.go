// Package eventlog is the node's memory: the vocabulary of events (JOIN,
// PEERS, CONNECT, DISCONNECT, DIAL_FAILED, CHAT, NICK, SEALED, ACK, BAN,
// UNBAN, and PRIVATE and DELIVERED of older logs), their stored encoding,
// the append-only log in bbolt and the projection folded from it. It owns
// the layout of its buckets and their migrations (schema.go), which Open
// hands to the store to run.
//
// Every event gets a local sequence number, from 1, used as its
// big-endian key, so the log reads back in order; a number is never used
// twice. Signed messages (Chat, Nick, and the private messages Sealed and
// Ack) are also indexed by (origin, origin seq): the log holds each at
// most once, and a repeat is reported as a duplicate by an index lookup,
// not a scan. A second index, a bitmap in blocks of 64 sequence numbers,
// marks which events are CHATs, so the last N lines are read without
// touching anything else. The node's own signed messages are numbered
// after the highest of its own the log holds, so a log missing some of
// them never reuses a number its peers hold.
//
// The projection is what the node acts on: the peer table (name,
// addresses, when seen and connected, dial failures, bans) and, per origin,
// the highest origin seq up to which every message is held. It is written
// only by fold, in the same transaction as the event that changes it.
// Verify runs the same fold in memory over a snapshot of the file and
// compares, so the stored projection is always a pure function of the log.
//
// # Hearsay rows and eviction
//
// A row that only PEERS made (and DIAL_FAILED, which proves nothing) is
// hearsay: Peer.Heard holds the seq of the last PEERS that named it, and
// the hearsay index (bucket "hearsay": heard seq + ID) orders such rows
// least recently heard first. Any other event about the node (its own
// JOIN, a CONNECT or DISCONNECT, a rename, a ban, a private message) makes
// the row known first hand for good. Node IDs cost nothing, so a peer can
// name millions of nodes that do not exist; were the table simply capped,
// such names would fill it and the node would never learn of a real peer
// again. Instead, once the table holds MaxPeers rows, each entry about an
// unknown node evicts the first hearsay row of the index not named by the
// same PEERS: finding it is a cursor step, not a pass over the table.
// Learning never stops while any row is hearsay, and a peer this node ever
// connected to, or that joined it, is never evicted. The evicted IDs are
// stored in the PEERS event itself (Peers.Evicted), and fold removes
// those rows; replay (Verify, Prune's checkpoint) does exactly what the
// log says, whatever Options.MaxPeers the replaying node has. Schema 4
// added Heard and the index; its migration folds the log once to give
// every existing row the Heard that fold would have given it.
//
// Rows known first hand are not evicted, not even those of peers
// unreachable for longer than peering's StaleAfter: such a row is what
// lets the node redial a peer it knew, and what its bans and private
// messages hang on. What bounds them is peering, not this package: a row
// becomes known only through a completed TLS handshake and JOIN (or a
// signed message of its own), peering lets IDs new to the table dial in
// only at its node-wide NewPeerRate (10 a second after a burst of 1,000
// by default) and records the JOINs of peers it refused as full at most
// MaxRefusedJoins a minute. That is a bound on the rate, not on the count:
// fresh keys that keep completing handshakes grow the known rows for as
// long as they keep at it. Evicting rows of peers unreachable past
// StaleAfter would cap that too, at the price of a second index ordered
// by last connect; it is left for when that growth is seen to matter.
//
// Retention (retention.go): chat lines, renames, bans, JOIN and PEERS stay
// for ever; CONNECT, DISCONNECT and DIAL_FAILED are pruned once older than
// Options.KeepNetworkEvents (30 days by default), behind a checkpoint of
// the peer table at the last pruned event, from which Verify folds on.
// Pruned events leave gaps in the sequence below the checkpoint.
//
// Names and chat text are checked here, once for every path (CheckName,
// CheckText): nothing invisible, such as zero-width or bidi-control
// characters, may hide in them. Skeleton folds names that only look alike
// (names.go), so that the node can show such names with their short IDs.
//
// # Signatures
//
// One place checks what a signed message's signature covers
// (signature.go): Verify of each type and VerifySigned check one message,
// VerifyBatch checks many together, and both go by the same rules, those
// of ZIP 215 (github.com/hdevalence/ed25519consensus): the cofactored
// equation, with any encoding of a point accepted. crypto/ed25519 checks
// without the cofactor, and a batch check cannot but use it, so the two
// can disagree on a crafted signature (one whose R has a small-order part
// added): a node checking alone and one checking in a batch could then
// store different lines, and a relay network must not. ZIP 215 makes
// single and batch checks agree exactly. Against the crypto/ed25519 check
// used before, it accepts a few more signatures and keys: such small-order
// components and non-canonical point encodings. Only a key's owner can make
// them (S must still be canonical and the equation hold for that key), so
// nobody can sign a line in another's name; they only let an author give
// one line more than one valid signature, which the log already treats as
// the same line, held once by its (origin, origin seq). A batch that
// fails is split in halves down to single messages, so a forged message
// is refused alone, with the error VerifySigned gives it.
//
// # Hash chains
//
// Each Chat and Nick an origin signs names its message before (origin seq
// − 1) in Prev, inside what its signature covers (under the tags
// p2pchat/chat/2 and p2pchat/nick/2, so no unchained line shares its
// signed bytes), as Secure Scuttlebutt's and Hypercore's feeds do (chain.go).
// What it names is ChainHash: SHA-256 of the predecessor's signed bytes
// and its signature. The signature is in it so that a chain vouches for
// the exact bytes a node stores and relays: a line taken on its
// successor's word is byte for byte the one its author signed.
//
// What this buys: one valid signature on line n vouches for every earlier
// line of its origin it chains to, so VerifyChained checks one signature
// per contiguous run of an origin in a batch (the tails of all runs
// together, in a batch check), and falls back to checking each line of a
// run whose tail fails, taking the lines up to the last one that holds on
// its word. A forged, altered or reordered line does not chain (its hash
// or position changes), so it breaks the run there and is checked, and
// refused, on its own signature, with the error VerifySigned gives it.
// Runs need no anchor in the log: a run's first line is vouched for by
// its own run's tail, whatever it chains to; whether it fits the held
// chain is Append's question (below). Only a chained line (with Prev) is
// ever taken on a successor's word: an unchained one (an origin's first,
// a Sealed or Ack, any line of before chains) may be relayed to peers of
// older protocol versions, which check it alone, so it must hold alone.
//
// The rule, then: a chained line is its origin's if its own signature
// holds or a line of its origin that is its origin's chains to it. Only
// the origin's key can make a line whose own signature fails and a
// successor that chains to it; the rule takes such a line, as its author
// vouched for it. Every node must decide such a line alike, or one that
// stored it would be blamed as a forger by one that refused it when it
// relays it: so the decision may not depend on where a node's batches
// happen to cut an origin's run. VerifyChainedOpen says which refused
// lines are still open (a successor not in the batch could vouch for
// them), and Log.Vouches whether the log holds that successor (Vouched),
// another one (VouchOther: a fork), or none. Package peering holds open
// lines back until later lines from the same peer bring their voucher:
// caught-up ones until their answer ends without it, live ones until a
// later line of their origin does not chain to them (its doc says how),
// so every node of protocol version 3 decides such a line the same way:
// stored if and only if its origin signed a successor that chains to it
// and that some node offers it with the line. For that, a node must never
// hold such a line without its voucher, or it would relay it alone:
// AppendVouched writes a line taken on a successor's word only if that
// successor is written too (or held, chaining to it), whatever refuses
// the successor (a fork, MaxAhead, MaxPerOrigin), trying its transaction
// again without the line if need be.
//
// The node's own lines: prepare chains each Chat and Nick it signs to the
// node's own message before it (of any signed type: Sealed and Ack carry
// no Prev, but can be named by one), which the log holds unless this is
// its first, or the log lost it; a line with nothing to name does not
// chain, and is checked by its own signature alone, as every line of an
// older version is. Sign does the same ahead of the write, so that the
// writer need not sign, and AppendSigned signs again inside the
// transaction whatever no longer follows the node's newest message
// (ahead.go).
//
// Forks: Append refuses (Result.Forked, nothing written) a message whose
// Prev does not name the held message before it, or that the held chained
// message after it does not name. It decides inside the write transaction,
// so no two callers race past it, and finds the hashes of a run written
// together in memory rather than reading them back. A second message under
// a held number is a Duplicate, as before, dropped before its signature
// costs anything; the fork shows once a line chaining to the other branch
// arrives. Whose fault a fork is: the origin's, whose key signed both; a
// peer that relays one branch may hold it by the same rules, so package
// peering refuses and logs a fork but does not penalize the peer. Nothing
// punishes the origin yet (a proof of two signed lines under one number
// could be kept and passed on: not done).
//
// Versions: lines without Prev (every line written before chains) stay
// valid by their own signature, and codec version 4 stores Prev after the
// signature while versions 1 to 3 still decode; no migration is needed,
// since a hash is computed from the stored message whenever it is asked
// for. The wire carries Prev from protocol version 3 (package
// peering/wire).
//
// Events are stored in a compact binary encoding that carries its version
// in its first byte (codec.go); every older version stays readable, and
// golden records of each type in each version guard that.
//
// Appends are group-committed: one writer goroutine takes every request
// that is waiting, writes them in one transaction (one fsync) and
// acknowledges each. Nothing here does network I/O, and no transaction is
// held open across anything but bbolt work.
//
// # What an Append error means
//
//   - nil: every body is on disk, or its Result says why it was not
//     stored (Duplicate, TooFarAhead).
//   - ErrRefused: a body cannot be stored as it is; nothing of the call
//     was stored.
//   - the context's error: the log had not taken the call; nothing was
//     stored. Once taken, Append waits for the commit whatever the
//     context does, so it never reports failure for what it stored.
//   - ErrClosed, ErrReadOnly: nothing was stored.
//   - an error wrapping store.ErrWriteFailed: a commit failed (a write or
//     fsync error, a full disk). The call's bodies may or may not be on
//     disk; the log has stopped (Stopped is closed) and every later Append
//     fails the same way, because after a failed fsync the process can no
//     longer know what the file holds. The node should stop; a restart
//     reads back the truth.
//   - any other error: this call's bodies failed on their own, and none of
//     them was stored. One caller's failure never fails another's bodies
//     in the same group commit: a failed batch is retried request by
//     request, as bbolt's DB.Batch does.
//
// # Bounds
//
// Enforced by Append, inside the transaction where they apply, so no race
// between callers passes them:
//   - MaxBatch events per commit (DefaultMaxBatch);
//   - MaxPerOrigin messages kept of any other node, and MaxAhead past an
//     origin's watermark (Options; 0 is no bound);
//   - MaxPeers rows in the peer table grown by hearsay
//     (DefaultMaxPeers): past it, a PEERS entry about an unknown node
//     evicts the least recently heard row that hearsay alone made (see
//     below), and is left out of the stored event only when no such row
//     is left; a DIAL_FAILED about a node without a row is not stored
//     while the table is full (Result.NoRoom);
//   - times: every time in a body fits int64 nanoseconds (1677 to 2262)
//     and is not the Unix epoch itself, which the encoding keeps for "no
//     time" (CheckTime); others are refused.
//
// Enforced by the vocabulary (Verify of Chat and Nick, CheckName,
// CheckText, CheckAddr) before anything reaches the log: names of 1 to
// MaxNameLen characters, texts of at most MaxTextLen bytes, at most
// MaxAddrs addresses of at most MaxAddrLen bytes, PEERS lists of at most
// MaxPeersList entries. Verify's report lists at most 50 differences.
// Reads are bounded too: Scan and Verify read at most 1024 events per
// read transaction, and SyncState's walk for holes at most 10,000 rows and
// 32 ranges per origin.
package eventlog
