package peering

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
)

// The catch-up frames. The model is in doc.go and catchup.go; this file
// holds the SYNC request, how it is packed into frames, read back and
// answered.

// Bounds of a SYNC request. A version 1 peer accepts at most
// wire.MaxSyncOriginsPerFrame origins per frame and maxSyncOrigins per request
// (and penalizes more), so this node never sends it more; from a version 2
// peer a request is bounded in bytes, maxSyncRequestBytes, which the
// reconciliation keeps every honest request under whatever the number of
// authors.
const (
	maxSyncOrigins      = 20000
	maxSyncRequestBytes = 1 << 20
	catchupPage         = 256
	// catchupPageBytes bounds a page of the log an answer holds, in
	// stored bytes: 256 lines of 4 KiB held 1 MiB per answer, 34 MiB for
	// 31 slow readers; two frames of the largest size still hold a page
	// of 256 short lines.
	catchupPageBytes = 2 * wire.DefaultMaxFrame
)

// syncOrigin is the wire form of what the log holds of one origin.
func syncOrigin(s eventlog.OriginState) wire.SyncOrigin {
	return wire.SyncOrigin{Origin: s.Origin, Watermark: s.Watermark, Max: s.Max, Missing: s.Missing}
}

// syncPacker packs a SYNC request into frames by their encoded size, so
// that no frame exceeds the frame limit however many ranges each origin
// has, and the whole request stays under a byte budget.
type syncPacker struct {
	maxFrame int
	budget   int // bytes the request may still take; <= 0: unbounded
	maxTotal int // origins the request may list; <= 0: unbounded
	round    uint64
	listed   int
	frames   [][]byte
	cur      wire.SyncMsg
	curBytes int
}

// Room for the frame's type, the fixed part of its JSON and a final
// "more":true added after the last origin was placed.
const syncFrameOverhead = 64

// originCost is what one origin adds to a SYNC frame.
func originCost(o wire.SyncOrigin) (int, error) {
	enc, err := json.Marshal(o)
	return len(enc) + 1, err
}

// add places one origin and reports false, placing nothing, once the
// request's budget is spent.
func (p *syncPacker) add(o wire.SyncOrigin) (bool, error) {
	cost, err := originCost(o)
	if err != nil {
		return false, err
	}
	if (p.maxTotal > 0 && p.listed >= p.maxTotal) || (p.budget > 0 && cost > p.budget) {
		return false, nil
	}
	if len(p.cur.Origins) == wire.MaxSyncOriginsPerFrame || p.curBytes+cost+syncFrameOverhead > p.maxFrame {
		if err := p.flush(true); err != nil {
			return false, err
		}
	}
	p.cur.Origins = append(p.cur.Origins, o)
	p.curBytes += cost
	if p.budget > 0 {
		p.budget -= cost
	}
	p.listed++
	return true, nil
}

// addScope places a scope prefix with no origins listed in it.
func (p *syncPacker) addScope(prefix string) (bool, error) {
	cost := len(prefix) + 3
	if p.budget > 0 && cost > p.budget {
		return false, nil
	}
	if p.curBytes+cost+syncFrameOverhead > p.maxFrame {
		if err := p.flush(true); err != nil {
			return false, err
		}
	}
	p.cur.Scope = append(p.cur.Scope, prefix)
	p.curBytes += cost
	if p.budget > 0 {
		p.budget -= cost
	}
	return true, nil
}

func (p *syncPacker) flush(more bool) error {
	p.cur.More, p.cur.Round = more, p.round
	if p.cur.Origins == nil {
		p.cur.Origins = []wire.SyncOrigin{}
	}
	frame, err := wire.EncodeFrame(wire.FrameSync, p.cur, p.maxFrame)
	if err != nil {
		return err
	}
	p.frames = append(p.frames, frame)
	p.cur, p.curBytes = wire.SyncMsg{}, 0
	return nil
}

// done ends the request: its last frame says no more follow.
func (p *syncPacker) done() ([][]byte, error) {
	if err := p.flush(false); err != nil {
		return nil, err
	}
	return p.frames, nil
}

// syncFrames packs a whole-log SYNC request, as a version 1 peer expects
// it: at most maxSyncOrigins origins, in frames of at most
// wire.MaxSyncOriginsPerFrame origins and maxFrame bytes. It also returns how
// many origins it listed; past that the peer will send everything of the
// origins left out, which costs duplicates but loses nothing.
func syncFrames(states []eventlog.OriginState, maxFrame int) ([][]byte, int, error) {
	p := syncPacker{maxFrame: maxFrame, maxTotal: maxSyncOrigins}
	listed := 0
	for _, s := range states {
		ok, err := p.add(syncOrigin(s))
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			break
		}
		listed++
	}
	frames, err := p.done()
	return frames, listed, err
}

// maxSyncRequestBytesV1 bounds what this node reads of a version 1
// peer's request, which lists every origin the peer holds; past it, or
// past maxSyncOrigins, the rest is ignored rather than held.
const maxSyncRequestBytesV1 = 4 << 20

// Memory of peers' SYNC requests. A request is held from its first frame
// until its answer ends or a newer one replaces it, and a connection may
// hold three at once: one being read, one waiting for its answer, one
// being answered. Held in memory, a request takes about as many bytes as
// its frames (origin IDs, seqs and ranges), so each connection's bounds
// alone would let peers hold 12 MiB of version 1 requests per connection,
// over 100 MiB from one stranger's fresh keys filling the node's slots.
// So a request's bytes past syncRequestFreeBytes come from one room for
// the whole node, syncRequestsRoom. A request that finds no room is no
// peer's fault: a version 1 request is cut where it was, as at its own
// bounds, and answered up to there; a version 2 request is dropped
// unanswered, and its sender asks again after its SyncTimeout. An honest
// request is rarely larger than the free part: reconciliation keeps it
// to the origins that differ.
const (
	syncRequestFreeBytes = 64 << 10
	syncRequestsRoom     = 16 << 20
)

// syncRequest is a peer's SYNC request, read frame by frame: what it holds
// of the origins it lists, within its scope.
type syncRequest struct {
	scope   prefixSet // empty: every origin
	origins map[eventlog.NodeID]wire.SyncOrigin
	bytes   int
	round   uint64
	// capped is set when a version 1 request ran past this node's bounds;
	// capFrom is the first origin it ignored. Such a peer lists origins
	// in ID order (its bbolt order), so origins below capFrom that it did
	// not list are ones it holds nothing of, and those from capFrom on
	// are unknown, and left out of the answer.
	capped  bool
	capFrom eventlog.NodeID
	// dropped is set when a version 2 request found no room: the rest of
	// it is read and ignored, and it is not answered.
	dropped bool
	// held is what the request took of the node's syncRoom.
	held int64
}

// hold takes room for the bytes of req past its free part, and reports
// whether there was room.
func (cu *catchup) hold(req *syncRequest) bool {
	need := int64(req.bytes-syncRequestFreeBytes) - req.held
	if need <= 0 {
		return true
	}
	if !cu.n.syncRoom.TryAcquire(need) {
		return false
	}
	req.held += need
	return true
}

// release gives back the room req holds; req may be nil.
func (cu *catchup) release(req *syncRequest) {
	if req == nil || req.held == 0 {
		return
	}
	cu.n.syncRoom.Release(req.held)
	req.held = 0
}

// releaseRequests gives back the room of the requests a closed
// connection still holds. Its loops have ended.
func (cu *catchup) releaseRequests() {
	cu.release(cu.acc)
	cu.acc = nil
	for {
		select {
		case req := <-cu.reqs:
			cu.release(req)
		default:
			return
		}
	}
}

// onSync collects a SYNC request, frame by frame, and hands the whole of it
// to the answer loop. Only the read loop calls it; it never waits for the
// answer loop, which may itself be waiting for this peer to read.
func (cu *catchup) onSync(payload []byte) error {
	var msg wire.SyncMsg
	if err := wire.DecodeStrict(payload, &msg); err != nil {
		return violation(fmt.Errorf("SYNC: %w", err))
	}
	if err := msg.Validate(); err != nil {
		return violation(err)
	}
	if cu.acc == nil {
		cu.acc = &syncRequest{origins: map[eventlog.NodeID]wire.SyncOrigin{}}
	}
	req := cu.acc
	req.bytes += len(payload)
	if cu.reconciles && req.bytes > maxSyncRequestBytes {
		return violation(fmt.Errorf("SYNC request over %d bytes", maxSyncRequestBytes))
	}
	if !req.capped && !req.dropped && !cu.hold(req) {
		if cu.reconciles {
			req.dropped = true
			cu.release(req)
			req.origins, req.scope = nil, prefixSet{}
			cu.n.limitedLog("sync room", warnLevel).Str("peer", cu.c.id.Short()).Msg("no room for the peer's SYNC request; it is not answered")
		} else if len(msg.Origins) > 0 {
			req.capped, req.capFrom = true, msg.Origins[0].Origin
			cu.n.limitedLog("sync room", warnLevel).Str("peer", cu.c.id.Short()).Msg("no room for all of the peer's SYNC request; it is answered up to where it was read")
		}
	}
	if !req.dropped {
		for _, p := range msg.Scope {
			req.scope.add(p)
		}
	}
	for _, o := range msg.Origins {
		if req.capped || req.dropped {
			break
		}
		if len(req.origins) >= maxSyncOrigins || req.bytes > maxSyncRequestBytesV1 {
			req.capped, req.capFrom = true, o.Origin
			break
		}
		req.origins[o.Origin] = o
	}
	if msg.More {
		return nil
	}
	req.round = msg.Round
	cu.acc = nil
	if req.dropped {
		return nil
	}
	// Only the newest request matters: an older one still waiting is
	// replaced, never queued behind.
	for {
		select {
		case cu.reqs <- req:
			return nil
		case old := <-cu.reqs:
			cu.release(old)
		case <-cu.c.closing:
			cu.release(req)
			return cu.c.closeErr
		}
	}
}

var errConnClosing = errors.New("connection closing")

// answerSync streams, origin by origin and oldest first, every stored
// message the peer lacks within its request's scope, then SYNCED with the
// count of lines sent. Each goes as CATCHUP, but for a peer of version 4
// or later runs of chained chat lines of one origin go as LINES, about
// 1.6 times as many lines for the bytes (wire.FrameLines). It walks
// the in-memory summaries, so origins the peer is level with cost no log
// read; it reads the log a page at a time under the answer's row and byte
// limiters, and waits for room in the bulk queue, so a large catch-up
// moves at the speed the peer reads and never crowds out live messages.
func (cu *catchup) answerSync(ctx context.Context, req *syncRequest) error {
	n, c := cu.n, cu.c
	sums, err := n.log.Summaries()
	if err != nil {
		return err
	}
	sent := 0
	var walkErr error
	// emit sends one frame of the answer, of lines lines, at the pace of
	// the byte limiter and of the peer's reading.
	emit := func(frame []byte, lines int) bool {
		if err := cu.bytesOut.WaitN(ctx, len(frame)); err != nil || !c.sendBulk(frame) {
			walkErr = errConnClosing
			return false
		}
		cu.answerBytes.Add(uint64(len(frame)))
		sent += lines
		return true
	}
	// A peer of version 4 or later gets runs of chained chat lines as
	// LINES; the packer holds the run being packed, which goes out
	// before any other frame so that an origin's lines keep their order.
	var packer *wire.LinesPacker
	if cu.version >= wire.LinesVersion {
		packer = wire.NewLinesPacker(n.cfg.MaxFrame)
	}
	emitLines := func(frame []byte, lines int) bool {
		if frame == nil {
			return true
		}
		cu.linesFrames.Add(1)
		return emit(frame, lines)
	}
	flush := func() bool {
		if packer == nil {
			return true
		}
		return emitLines(packer.Flush())
	}
	// Until its own lines are let go at start (holdOwnLines), this node
	// passes none of them on: a peer that holds them then had them from
	// before, and only such a peer can tell a node restored from an old
	// copy what it lost (speaksForSelf). The peer's next round gets them.
	holding := n.holdingOwnLines()
	req.scope.each(sums, func(s eventlog.OriginSummary) bool {
		theirs, listed := req.origins[s.Origin]
		if !listed && req.capped && bytes.Compare(s.Origin[:], req.capFrom[:]) >= 0 {
			return true // past what was read of the request: unknown
		}
		if s.Max < theirs.FirstWanted() {
			return true // nothing of this origin that the peer lacks
		}
		if holding && s.Origin == n.self {
			n.ownLeftOut.Store(true)
			return true
		}
		after := theirs.FirstWanted() - 1
		for {
			events, more, err := n.log.ByOriginPage(s.Origin, after, catchupPage, catchupPageBytes)
			if err != nil {
				walkErr = err
				return false
			}
			if err := cu.rowsOut.WaitN(ctx, max(1, len(events))); err != nil {
				walkErr = errConnClosing
				return false
			}
			for _, e := range events {
				m, ok := e.Body.(eventlog.Signed)
				if !ok {
					walkErr = fmt.Errorf("origin index points at a %s event", e.Body.Type())
					return false
				}
				_, after = m.OriginKey()
				if c, ok := m.(eventlog.Chat); ok && packer != nil && wire.Chained(c) && theirs.Wants(after) {
					done, lines, err := packer.Add(c)
					if err != nil {
						walkErr = err
						return false
					}
					if !emitLines(done, lines) {
						return false
					}
					continue
				}
				if !theirs.Wants(after) || cu.version < wire.MinVersion(e.Body) {
					continue
				}
				frame, err := wire.CatchupFrame(m, n.cfg.MaxFrame)
				if err != nil {
					walkErr = err
					return false
				}
				if !flush() || !emit(frame, 1) {
					return false
				}
			}
			if !more {
				return true
			}
		}
	})
	if walkErr == nil {
		flush() // sets walkErr if the connection is closing
	}
	if walkErr != nil {
		return walkErr
	}
	frame, err := wire.EncodeFrame(wire.FrameSynced, wire.SyncedMsg{Sent: sent, Round: req.round}, n.cfg.MaxFrame)
	if err != nil {
		return err
	}
	if !c.sendBulk(frame) {
		return errConnClosing
	}
	cu.answerBytes.Add(uint64(len(frame)))
	if sent > 0 {
		n.logger.Info().Str("peer", c.id.Short()).Int("messages", sent).Msg("caught peer up")
	}
	if holding && !n.holdingOwnLines() && n.ownLeftOut.Load() {
		// Let go while this answer was under way, maybe after the
		// HAVE that firstCatchupEnded sent.
		c.sendMsg(wire.FrameHave, struct{}{})
	}
	return nil
}
