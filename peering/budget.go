package peering

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// Chat budget. Each connection may bring live CHAT, NICK and PRIVATE
// frames at Config.ChatRate per second after a burst of Config.ChatBurst;
// catch-up this node asked for (CATCHUP between its SYNC and the peer's
// SYNCED) is free. Past the budget the read loop waits before it handles the next
// frame: it stops reading, TCP's window closes, and the sender slows down.
// Nothing is dropped. A peer that keeps the read loop waiting for more than
// Config.FloodGrace within Config.FloodWindow is flooding: its connection
// ends and its node ID is refused for Config.FloodPenalty. Penalties fall
// on node IDs, never on addresses, which honest peers may share.

// errPenalized ends a connection of a peer that is refused for a while.
var errPenalized = errors.New("penalized")

// minBudgetWait is the shortest wait worth a timer: below it the debt is
// carried to the next frame, so a steady stream sleeps a few times per
// interval instead of once per frame.
const minBudgetWait = 5 * time.Millisecond

// chatBudget is one connection's token bucket. Only the read loop touches
// it, except asked, which the sync loop raises.
type chatBudget struct {
	tokens float64 // may go below zero: frames taken on credit
	last   time.Time
	timer  *time.Timer

	windowStart time.Time
	waited      time.Duration // within the window that began at windowStart

	// asked counts this node's SYNC requests that the peer has not ended
	// with SYNCED yet; while it is above zero, CATCHUP is free. A request
	// the peer replaced with a newer one is never answered, so the count
	// errs on the generous side.
	asked atomic.Int64
}

// ask notes a SYNC request sent to the peer.
func (b *chatBudget) ask() { b.asked.Add(1) }

// answered notes a SYNCED from the peer.
func (b *chatBudget) answered() {
	for {
		v := b.asked.Load()
		if v <= 0 || b.asked.CompareAndSwap(v, v-1) {
			return
		}
	}
}

// take spends one frame's worth of budget at now and returns how long the
// reader should wait before handling the frame. It returns an error once
// the waits within one window add up to more than grace.
func (b *chatBudget) take(now time.Time, rate, burst int, grace, window time.Duration) (time.Duration, error) {
	if b.last.IsZero() {
		b.tokens, b.last, b.windowStart = float64(burst), now, now
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(float64(burst), b.tokens+elapsed.Seconds()*float64(rate))
		b.last = now
	}
	b.tokens--
	if b.tokens >= 0 {
		return 0, nil
	}
	wait := time.Duration(-b.tokens / float64(rate) * float64(time.Second))
	if wait < minBudgetWait {
		return 0, nil
	}
	if now.Sub(b.windowStart) > window {
		b.windowStart, b.waited = now, 0
	}
	b.waited += wait
	if b.waited > grace {
		return 0, fmt.Errorf("%w: chat flood, held back %s within %s", errPenalized, b.waited.Round(time.Millisecond), window)
	}
	return wait, nil
}

// charge accounts for a frame the read loop is about to handle and, when
// the budget is spent, waits (stops reading) until it allows the frame.
// The wait ends early if the connection closes. A flooding peer is
// penalized and the error ends its connection.
func (c *conn) charge(typ string) error {
	switch typ {
	case FrameChat, FrameNick, FramePrivate, FrameSync, FramePeers, FrameHave:
		// PEERS and SYNC cost a table read or a log walk each: a peer
		// repeating them pays as for chat.
	case FrameCatchup:
		if c.budget.asked.Load() > 0 {
			return nil
		}
	case FrameSynced:
		c.budget.answered()
		return nil
	default:
		return nil
	}
	cfg := &c.n.cfg
	wait, err := c.budget.take(time.Now(), cfg.ChatRate, cfg.ChatBurst, cfg.FloodGrace, cfg.FloodWindow)
	if err != nil {
		c.n.penalize(c.id, cfg.FloodPenalty, err)
		return err
	}
	if wait <= 0 {
		return nil
	}
	if c.budget.timer == nil {
		c.budget.timer = time.NewTimer(wait)
	} else {
		c.budget.timer.Reset(wait)
	}
	select {
	case <-c.budget.timer.C:
		return nil
	case <-c.closing:
		c.budget.timer.Stop()
		return c.closeErr
	}
}

// penaltyBox holds the node IDs refused until a time.
type penaltyBox struct {
	mu    sync.Mutex
	until map[eventlog.NodeID]time.Time
}

// add refuses id until the given time, or longer if it already is.
func (p *penaltyBox) add(id eventlog.NodeID, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.until == nil {
		p.until = map[eventlog.NodeID]time.Time{}
	}
	now := time.Now()
	for other, t := range p.until {
		if !t.After(now) {
			delete(p.until, other)
		}
	}
	if until.After(p.until[id]) {
		p.until[id] = until
	}
}

// active reports whether id is refused at now, and until when.
func (p *penaltyBox) active(id eventlog.NodeID, now time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.until[id]
	if ok && !until.After(now) {
		delete(p.until, id)
		return time.Time{}, false
	}
	return until, ok
}

// after returns due, or the end of id's penalty if that is later, so the
// dialer leaves a penalized peer alone.
func (p *penaltyBox) after(id eventlog.NodeID, due time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := p.until[id]; until.After(due) {
		return until
	}
	return due
}

// penalize refuses the node id for d: its connection ends, its handshakes
// are answered with GOODBYE "penalized", and it is not dialed, until the
// time is up. why is logged.
func (n *Node) penalize(id eventlog.NodeID, d time.Duration, why error) {
	until := time.Now().Add(d)
	n.penalties.add(id, until)
	n.stats.countPenalty(why)
	n.mu.Lock()
	c := n.conns[id]
	n.mu.Unlock()
	if c != nil {
		c.close(why)
	}
	n.limitedLog("penalty "+id.String(), warnLevel).Err(why).Str("peer", id.Short()).Time("until", until).Msg("penalized peer")
}

// errViolation marks what a peer did wrong, as opposed to what went wrong
// here (a full disk, say): only the former is held against its node ID.
var errViolation = errors.New("protocol violation")

func violation(err error) error { return fmt.Errorf("%w: %w", errViolation, err) }

// punish penalizes the node ID of a peer whose connection ended in a
// protocol violation, so that it is neither redialed nor passed on for a
// while. A handshake proves only that the peer holds its key; what it does
// after is what counts.
func (n *Node) punish(id eventlog.NodeID, err error) {
	if errors.Is(err, errViolation) {
		n.penalize(id, n.cfg.FloodPenalty, err)
	}
}
