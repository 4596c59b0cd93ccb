// Package eventlog is the node's memory: the vocabulary of events (JOIN,
// PEERS, CONNECT, DISCONNECT, DIAL_FAILED, CHAT, NICK, PRIVATE, BAN,
// UNBAN), their stored encoding, the append-only log in bbolt and the
// projection folded from it.
//
// Every event gets a local sequence number, gap-free from 1, used as its
// big-endian key, so the log reads back in order. Signed messages (Chat and
// Nick) are also indexed by (origin, origin seq): the log holds each at
// most once, and a repeat is reported as a duplicate by an index lookup,
// not a scan. A second index, a bitmap in blocks of 64 sequence numbers,
// marks which events are CHATs, so the last N lines are read without
// touching anything else.
//
// The projection is what the node acts on: the peer table (name,
// addresses, when seen and connected, dial failures, bans) and, per origin,
// the highest origin seq up to which every message is held. It is written
// only by fold, in the same transaction as the event that changes it.
// Verify runs the same fold over the whole log in memory and compares, so
// the stored projection is always a pure function of the log.
//
// Names and chat text are checked here, once for every path (CheckName,
// CheckText): nothing invisible, such as zero-width or bidi-control
// characters, may hide in them. Skeleton folds names that only look alike
// (names.go), so that the node can show such names with their short IDs.
//
// Events are stored in a compact binary encoding that carries its version
// in its first byte (codec.go); every older version stays readable.
//
// Appends are group-committed: one writer goroutine takes every request
// that is waiting, writes them in one transaction (one fsync) and
// acknowledges each. Nothing here does network I/O, and no transaction is
// held open across anything but bbolt work.
package eventlog
