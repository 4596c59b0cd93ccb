package peering

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/p2pchat/p2pchat/eventlog"
)

// The catch-up frames. The model is in doc.go and catchup.go; this file
// holds the SYNC request, how it is packed into frames, read back and
// answered.

// Frame types of catch-up.
const (
	FrameSync    = "SYNC"
	FrameCatchup = "CATCHUP"
	FrameSynced  = "SYNCED"
	// FrameHave tells peers that catch-up brought this node lines it did
	// not have, so they ask it now instead of at their next interval:
	// caught-up lines are not relayed live, and this is how they still
	// cross a partial mesh quickly.
	FrameHave = "HAVE"
)

// Bounds of a SYNC request. A version 1 peer accepts at most
// maxSyncOriginsPerFrame origins per frame and maxSyncOrigins per request
// (and penalizes more), so this node never sends it more; from a version 2
// peer a request is bounded in bytes, maxSyncRequestBytes, which the
// reconciliation keeps every honest request under whatever the number of
// authors.
const (
	maxSyncOriginsPerFrame = 300
	maxSyncOrigins         = 20000
	maxSyncRanges          = 32
	maxSyncRequestBytes    = 1 << 20
	catchupPage            = 256
)

// SyncMsg is one frame of a SYNC request; More says another follows.
type SyncMsg struct {
	Origins []SyncOrigin `json:"origins"`
	More    bool         `json:"more,omitempty"`
	// Scope, from version 2 on, lists the origin ID prefixes (lowercase
	// hex nibbles) the request covers: the answer holds only origins
	// inside them, and an origin inside them that the request does not
	// list is one the sender holds nothing of. A request none of whose
	// frames has a scope covers every origin, as in version 1.
	Scope []string `json:"scope,omitempty"`
	// Round, from version 2 on, numbers the sender's requests on this
	// connection; the SYNCED that ends the answer repeats it, so a late
	// answer to a request given up on cannot end a newer one.
	Round uint64 `json:"round,omitempty"`
}

// SyncOrigin is what the sender holds of one origin. An origin it does not
// list, it holds nothing of.
type SyncOrigin struct {
	Origin    eventlog.NodeID  `json:"origin"`
	Watermark uint64           `json:"watermark"`
	Max       uint64           `json:"max"`
	Missing   []eventlog.Range `json:"missing,omitempty"`
}

// CatchupMsg carries one stored message in answer to SYNC: exactly one of
// its fields is set.
type CatchupMsg struct {
	Chat   *ChatMsg   `json:"chat,omitempty"`
	Nick   *NickMsg   `json:"nick,omitempty"`
	Sealed *SealedMsg `json:"sealed,omitempty"`
	Ack    *AckMsg    `json:"ack,omitempty"`
}

// SyncedMsg ends the answer to a SYNC request: the lines sent, and the
// request's Round.
type SyncedMsg struct {
	Sent  int    `json:"sent"`
	Round uint64 `json:"round,omitempty"`
}

// Validate checks the bounds of one SYNC frame.
func (m SyncMsg) Validate() error {
	if len(m.Origins) > maxSyncOriginsPerFrame {
		return fmt.Errorf("SYNC lists %d origins, the limit is %d", len(m.Origins), maxSyncOriginsPerFrame)
	}
	for _, p := range m.Scope {
		if err := checkPrefix(p); err != nil {
			return fmt.Errorf("SYNC scope: %w", err)
		}
	}
	for _, o := range m.Origins {
		if len(o.Missing) > maxSyncRanges {
			return fmt.Errorf("SYNC lists %d missing ranges for %s, the limit is %d", len(o.Missing), o.Origin.Short(), maxSyncRanges)
		}
		for _, r := range o.Missing {
			if r.From == 0 || r.From > r.To || r.From <= o.Watermark || r.To > o.Max {
				return fmt.Errorf("SYNC range %d-%d of %s is out of order", r.From, r.To, o.Origin.Short())
			}
		}
		if o.Max < o.Watermark {
			return fmt.Errorf("SYNC max %d of %s is below its watermark %d", o.Max, o.Origin.Short(), o.Watermark)
		}
	}
	return nil
}

// syncOrigin is the wire form of what the log holds of one origin.
func syncOrigin(s eventlog.OriginState) SyncOrigin {
	return SyncOrigin{Origin: s.Origin, Watermark: s.Watermark, Max: s.Max, Missing: s.Missing}
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
	cur      SyncMsg
	curBytes int
}

// Room for the frame's type, the fixed part of its JSON and a final
// "more":true added after the last origin was placed.
const syncFrameOverhead = 64

// originCost is what one origin adds to a SYNC frame.
func originCost(o SyncOrigin) (int, error) {
	enc, err := json.Marshal(o)
	return len(enc) + 1, err
}

// add places one origin and reports false, placing nothing, once the
// request's budget is spent.
func (p *syncPacker) add(o SyncOrigin) (bool, error) {
	cost, err := originCost(o)
	if err != nil {
		return false, err
	}
	if (p.maxTotal > 0 && p.listed >= p.maxTotal) || (p.budget > 0 && cost > p.budget) {
		return false, nil
	}
	if len(p.cur.Origins) == maxSyncOriginsPerFrame || p.curBytes+cost+syncFrameOverhead > p.maxFrame {
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
		p.cur.Origins = []SyncOrigin{}
	}
	frame, err := EncodeFrame(FrameSync, p.cur, p.maxFrame)
	if err != nil {
		return err
	}
	p.frames = append(p.frames, frame)
	p.cur, p.curBytes = SyncMsg{}, 0
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
// maxSyncOriginsPerFrame origins and maxFrame bytes. It also returns how
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

// wants reports whether a peer in state s lacks origin seq seq.
func (s SyncOrigin) wants(seq uint64) bool {
	if seq > max(s.Max, s.Watermark) {
		return true
	}
	for _, r := range s.Missing {
		if seq >= r.From && seq <= r.To {
			return true
		}
	}
	return false
}

// firstWanted is the lowest origin seq a peer in state s may lack.
func (s SyncOrigin) firstWanted() uint64 {
	if len(s.Missing) > 0 {
		return s.Missing[0].From
	}
	return max(s.Max, s.Watermark) + 1
}

// lacked is the number of origin seqs a peer in state s says it lacks
// below its highest: the holes, which are all an answer can be checked
// against.
func (s SyncOrigin) lacked() int64 {
	var n int64
	for _, r := range s.Missing {
		n += int64(r.To - r.From + 1)
	}
	return n
}

// maxSyncRequestBytesV1 bounds what this node reads of a version 1
// peer's request, which lists every origin the peer holds; past it, or
// past maxSyncOrigins, the rest is ignored rather than held.
const maxSyncRequestBytesV1 = 4 << 20

// syncRequest is a peer's SYNC request, read frame by frame: what it holds
// of the origins it lists, within its scope.
type syncRequest struct {
	scope   prefixSet // empty: every origin
	origins map[eventlog.NodeID]SyncOrigin
	bytes   int
	round   uint64
	// capped is set when a version 1 request ran past this node's bounds;
	// capFrom is the first origin it ignored. Such a peer lists origins
	// in ID order (its bbolt order), so origins below capFrom that it did
	// not list are ones it holds nothing of, and those from capFrom on
	// are unknown, and left out of the answer.
	capped  bool
	capFrom eventlog.NodeID
}

// onSync collects a SYNC request, frame by frame, and hands the whole of it
// to the answer loop. Only the read loop calls it; it never waits for the
// answer loop, which may itself be waiting for this peer to read.
func (cu *catchup) onSync(payload []byte) error {
	var msg SyncMsg
	if err := decodeStrict(payload, &msg); err != nil {
		return violation(fmt.Errorf("SYNC: %w", err))
	}
	if err := msg.Validate(); err != nil {
		return violation(err)
	}
	if cu.acc == nil {
		cu.acc = &syncRequest{origins: map[eventlog.NodeID]SyncOrigin{}}
	}
	req := cu.acc
	req.bytes += len(payload)
	if cu.reconciles && req.bytes > maxSyncRequestBytes {
		return violation(fmt.Errorf("SYNC request over %d bytes", maxSyncRequestBytes))
	}
	for _, p := range msg.Scope {
		req.scope.add(p)
	}
	for _, o := range msg.Origins {
		if req.capped {
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
	// Only the newest request matters: an older one still waiting is
	// replaced, never queued behind.
	for {
		select {
		case cu.reqs <- req:
			return nil
		case <-cu.reqs:
		case <-cu.c.closing:
			return cu.c.closeErr
		}
	}
}

var errConnClosing = errors.New("connection closing")

// answerSync streams, origin by origin and oldest first, every stored
// message the peer lacks within its request's scope, then SYNCED. It walks
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
	req.scope.each(sums, func(s eventlog.OriginSummary) bool {
		theirs, listed := req.origins[s.Origin]
		if !listed && req.capped && bytes.Compare(s.Origin[:], req.capFrom[:]) >= 0 {
			return true // past what was read of the request: unknown
		}
		if s.Max < theirs.firstWanted() {
			return true // nothing of this origin that the peer lacks
		}
		after := theirs.firstWanted() - 1
		for {
			events, err := n.log.ByOrigin(s.Origin, after, catchupPage)
			if err != nil {
				walkErr = err
				return false
			}
			if err := cu.rowsOut.WaitN(ctx, max(1, len(events))); err != nil {
				walkErr = errConnClosing
				return false
			}
			for _, e := range events {
				var msg CatchupMsg
				switch b := e.Body.(type) {
				case eventlog.Chat:
					after = b.OriginSeq
					m := ChatFromEvent(b)
					msg.Chat = &m
				case eventlog.Nick:
					after = b.OriginSeq
					m := NickFromEvent(b)
					msg.Nick = &m
				case eventlog.Sealed:
					after = b.OriginSeq
					m := SealedFromEvent(b)
					msg.Sealed = &m
				case eventlog.Ack:
					after = b.OriginSeq
					m := AckFromEvent(b)
					msg.Ack = &m
				default:
					walkErr = fmt.Errorf("origin index points at a %s event", e.Body.Type())
					return false
				}
				if !theirs.wants(after) {
					continue
				}
				frame, err := EncodeFrame(FrameCatchup, msg, n.cfg.MaxFrame)
				if err != nil {
					walkErr = err
					return false
				}
				if err := cu.bytesOut.WaitN(ctx, len(frame)); err != nil || !c.sendBulk(frame) {
					walkErr = errConnClosing
					return false
				}
				cu.answerBytes.Add(uint64(len(frame)))
				sent++
			}
			if len(events) < catchupPage {
				return true
			}
		}
	})
	if walkErr != nil {
		return walkErr
	}
	frame, err := EncodeFrame(FrameSynced, SyncedMsg{Sent: sent, Round: req.round}, n.cfg.MaxFrame)
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
	return nil
}
