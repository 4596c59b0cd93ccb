package peering

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// Catch-up. On every connection, and again every SyncInterval, each side
// sends SYNC: per origin, the highest origin seq it holds every message up
// to (the watermark), the highest it holds at all, and the holes between.
// The other side answers with CATCHUP frames holding every stored signed
// message (Chat, Nick, Sealed, Ack) the first lacks, oldest first per origin, then SYNCED. Since every
// node keeps the whole log, any peer can fill in what another missed,
// whoever spoke; signatures make the relayed messages as trustworthy as
// live ones.

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

// Bounds of a SYNC request, so that a peer cannot make a node hold or walk
// more than a few megabytes for it.
const (
	maxSyncOriginsPerFrame = 300
	maxSyncOrigins         = 20000
	maxSyncRanges          = 32
	catchupPage            = 256
)

// SyncMsg is one frame of a SYNC request; More says another follows.
type SyncMsg struct {
	Origins []SyncOrigin `json:"origins"`
	More    bool         `json:"more,omitempty"`
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

// SyncedMsg ends the answer to a SYNC request.
type SyncedMsg struct {
	Sent int `json:"sent"`
}

// Validate checks the bounds of one SYNC frame.
func (m SyncMsg) Validate() error {
	if len(m.Origins) > maxSyncOriginsPerFrame {
		return fmt.Errorf("SYNC lists %d origins, the limit is %d", len(m.Origins), maxSyncOriginsPerFrame)
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

// syncFrames encodes this node's state as SYNC frames.
func syncFrames(states []eventlog.OriginState, maxFrame int) ([][]byte, error) {
	var frames [][]byte
	for start := 0; start == 0 || start < len(states); start += maxSyncOriginsPerFrame {
		end := min(start+maxSyncOriginsPerFrame, len(states))
		msg := SyncMsg{Origins: make([]SyncOrigin, 0, end-start), More: end < len(states)}
		for _, s := range states[start:end] {
			msg.Origins = append(msg.Origins, SyncOrigin{Origin: s.Origin, Watermark: s.Watermark, Max: s.Max, Missing: s.Missing})
		}
		frame, err := EncodeFrame(FrameSync, msg, maxFrame)
		if err != nil {
			return nil, err
		}
		frames = append(frames, frame)
		if len(states) == 0 {
			break
		}
	}
	return frames, nil
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

// sendSync asks the peer for what this node lacks.
func (n *Node) sendSync(c *conn) error {
	states, err := n.log.SyncState()
	if err != nil {
		return fmt.Errorf("read sync state: %w", err)
	}
	frames, err := syncFrames(states, n.cfg.MaxFrame)
	if err != nil {
		return err
	}
	c.budget.ask() // the answer's CATCHUP frames are free
	c.syncPending.Store(true)
	n.caught.asked(c)
	for _, f := range frames {
		c.send(f)
	}
	return nil
}

// onSync collects a SYNC request, frame by frame, and hands the whole of it
// to the sync loop. Only the read loop calls it.
func (c *conn) onSync(payload []byte) error {
	var msg SyncMsg
	if err := json.Unmarshal(payload, &msg); err != nil {
		return violation(fmt.Errorf("SYNC: %w", err))
	}
	if err := msg.Validate(); err != nil {
		return violation(err)
	}
	if c.syncAcc == nil {
		c.syncAcc = map[eventlog.NodeID]SyncOrigin{}
	}
	for _, o := range msg.Origins {
		c.syncAcc[o.Origin] = o
	}
	if len(c.syncAcc) > maxSyncOrigins {
		return violation(fmt.Errorf("SYNC lists more than %d origins", maxSyncOrigins))
	}
	if msg.More {
		return nil
	}
	req := c.syncAcc
	c.syncAcc = nil
	// Only the newest request matters: an older one still waiting is
	// replaced, never queued behind.
	for {
		select {
		case c.syncReqs <- req:
			return nil
		case <-c.syncReqs:
		case <-c.closing:
			return c.closeErr
		}
	}
}

// syncLoop answers the peer's SYNC requests and sends this node's own,
// at connect and then every SyncInterval, so holes left by churn fill in
// without anyone relaying old messages to everyone.
func (c *conn) syncLoop() {
	defer c.wg.Done()
	n := c.n
	if err := n.sendSync(c); err != nil {
		c.close(err)
		return
	}
	tick := time.NewTicker(n.cfg.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case req := <-c.syncReqs:
			if err := n.answerSync(c, req); err != nil {
				if !errors.Is(err, errConnClosing) {
					n.logger.Error().Err(err).Str("peer", c.id.Short()).Msg("answer SYNC")
					// Left open, the connection would answer no SYNC
					// again, and the peer would wait for this SYNCED
					// for good: end it, to be redialed.
					c.close(fmt.Errorf("answer SYNC: %w", err))
				}
				return
			}
		case <-tick.C:
			if c.syncPending.Load() {
				// The answer to the last request is still coming:
				// a new one would be answered with the same lines.
				continue
			}
			if err := n.sendSync(c); err != nil {
				n.logger.Error().Err(err).Msg("send SYNC")
			}
		case <-c.closing:
			return
		}
	}
}

var errConnClosing = errors.New("connection closing")

// answerSync streams, origin by origin and oldest first, every stored
// message the peer lacks, then SYNCED. It reads the log a page at a time
// and waits for room in the bulk queue, so a large catch-up moves at the
// speed the peer reads and never crowds out live messages.
func (n *Node) answerSync(c *conn, req map[eventlog.NodeID]SyncOrigin) error {
	states, err := n.log.SyncState()
	if err != nil {
		return err
	}
	sent := 0
	for _, s := range states {
		theirs := req[s.Origin]
		if s.Max < theirs.firstWanted() {
			continue // nothing of this origin that the peer lacks
		}
		after := theirs.firstWanted() - 1
		for {
			events, err := n.log.ByOrigin(s.Origin, after, catchupPage)
			if err != nil {
				return err
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
					return fmt.Errorf("origin index points at a %s event", e.Body.Type())
				}
				if !theirs.wants(after) {
					continue
				}
				frame, err := EncodeFrame(FrameCatchup, msg, n.cfg.MaxFrame)
				if err != nil {
					return err
				}
				if !c.sendBulk(frame) {
					return errConnClosing
				}
				sent++
			}
			if len(events) < catchupPage {
				break
			}
		}
	}
	frame, err := EncodeFrame(FrameSynced, SyncedMsg{Sent: sent}, n.cfg.MaxFrame)
	if err != nil {
		return err
	}
	if !c.sendBulk(frame) {
		return errConnClosing
	}
	if sent > 0 {
		n.logger.Info().Str("peer", c.id.Short()).Int("messages", sent).Msg("caught peer up")
	}
	return nil
}
