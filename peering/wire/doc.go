// Package wire is the protocol's wire format, and nothing else: the frame
// (`TYPE|<JSON>\n`, at most DefaultMaxFrame bytes) and its reader and
// encoder, the frame types, the payload of each with the bounds a valid
// one keeps (its Validate method), and the strict decoder every payload is
// read with. It holds no connection, no node and no state, so that the
// parser stands apart from the state machine that acts on what it parsed
// (package peering), and can be fuzzed on its own (FuzzFrame covers every
// frame type).
//
// Decoding is strict (DecodeStrict): an unknown field, a duplicate key or
// anything after the JSON value is an error, so that what a node verified
// is all a payload carried. A relayed signed message is sent again in its
// canonical encoding (SignedFrame), never as the bytes that came in.
//
// Frame types this version does not know are read like any other frame
// and left to the caller to ignore, so later versions can add frames.
// ProtocolVersion, sent in JOIN, says which frames a peer understands:
// LINES (version 4), which packs a run of one origin's chained lines into
// a frame in answer to SYNC, goes only to peers of version 4 or later,
// and its lines decode (LinesMsg.Events) to exactly the events their
// CATCHUP frames give.
package wire
