package peering

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"golang.org/x/time/rate"
)

// Budgets. Each connection pays for what it makes this node spend, in
// token buckets (golang.org/x/time/rate) that count what things cost, not
// how many there are, like nats-server's max_pending:
//
//   - bytes: every frame's length, at Config.ByteRate after Config.ByteBurst;
//   - chat: live signed messages (CHAT, NICK, SEALED, ACK), and PEERS,
//     SYNC, SYNCQ, SYNCFP and HAVE, which each start work, at
//     Config.ChatRate after Config.ChatBurst;
//   - gossip: units of work at Config.GossipRate after Config.GossipBurst,
//     a slow budget of its own so that chat never waits for gossip: a PEERS
//     frame costs one unit per entry decoded and per table row it reads;
//   - new peer IDs (PEERS entries naming nodes the table does not hold) at
//     Config.NewPeerRate after Config.NewPeerBurst; entries past it are
//     not recorded or dialed;
//   - new authors (live lines from an origin the log has never held) at
//     Config.NewAuthorRate after Config.NewAuthorBurst.
//
// Catch-up this node asked for is free (catchup.admit decides which
// CATCHUP lines those are, and bounds the new authors among them by
// Config.CatchupAuthors and what the peer said it holds; any other
// CATCHUP line pays as a live one, chat and new-author budget both). Past a budget the read loop waits before it handles the
// frame: it stops reading, TCP's window closes, and the sender slows down.
// Nothing is dropped. A peer that keeps the connection waiting for more
// than Config.FloodGrace within Config.FloodWindow is flooding: its
// connection ends and its node ID is refused for Config.FloodPenalty.
// Penalties fall on node IDs, never on addresses, which honest peers may
// share.

// errPenalized ends a connection of a peer that is refused for a while.
var errPenalized = errors.New("penalized")

// minBudgetWait is the shortest wait worth a timer: below it the debt is
// carried to the next frame, so a steady stream sleeps a few times per
// interval instead of once per frame.
const minBudgetWait = 5 * time.Millisecond

// connBudget is one connection's budgets. The read loop alone touches
// bytes, chat, gossip, newPeers and the flood accounting; newAuthors is
// the ingest loop's.
type connBudget struct {
	bytes, chat, gossip *rate.Limiter
	newPeers            *rate.Limiter
	newAuthors          *rate.Limiter

	timer       *time.Timer
	windowStart time.Time
	waited      time.Duration // within the window that began at windowStart
}

// setup fills the budgets from cfg, each starting full.
func (b *connBudget) setup(cfg *Config) {
	b.bytes = rate.NewLimiter(rate.Limit(cfg.ByteRate), cfg.ByteBurst)
	b.chat = rate.NewLimiter(rate.Limit(cfg.ChatRate), cfg.ChatBurst)
	b.gossip = rate.NewLimiter(rate.Limit(cfg.GossipRate), cfg.GossipBurst)
	b.newPeers = rate.NewLimiter(rate.Limit(cfg.NewPeerRate), cfg.NewPeerBurst)
	b.newAuthors = rate.NewLimiter(rate.Limit(cfg.NewAuthorRate), cfg.NewAuthorBurst)
}

// reserve takes n tokens of lim at now, on credit if need be, and returns
// how long the taker should wait for them. More than the burst at once is
// charged as the whole burst: it empties the bucket, and the next taker
// waits for it to refill.
func reserve(lim *rate.Limiter, now time.Time, n int) time.Duration {
	return lim.ReserveN(now, min(n, lim.Burst())).DelayFrom(now)
}

// hold accounts for a wait of d at now and returns an error once the waits
// within one window add up to more than grace. A wait too short for a
// timer is carried as debt and reported as zero.
func (b *connBudget) hold(now time.Time, d time.Duration, what string, grace, window time.Duration) (time.Duration, error) {
	if d < minBudgetWait {
		return 0, nil
	}
	if now.Sub(b.windowStart) > window {
		b.windowStart, b.waited = now, 0
	}
	b.waited += d
	if b.waited > grace {
		return 0, fmt.Errorf("%w: %s flood, held back %s within %s", errPenalized, what, b.waited.Round(time.Millisecond), window)
	}
	return d, nil
}

// charge accounts for a frame of size bytes the read loop is about to
// handle and, when a budget is spent, waits (stops reading) until it
// allows the frame. The wait ends early if the connection closes. A
// flooding peer is penalized and the error ends its connection.
func (c *conn) charge(typ string, size int) error {
	if typ == wire.FrameCatchup || typ == wire.FrameLines {
		// Charged by catchup.admit once decoded, line by line: only
		// then is it known whether this node asked for it.
		return nil
	}
	now := time.Now()
	wait, what := reserve(c.budget.bytes, now, size), "byte"
	switch typ {
	case wire.FrameChat, wire.FrameNick, wire.FrameSealed, wire.FrameAck, wire.FramePrivate, wire.FrameSync, wire.FramePeers, wire.FrameHave, wire.FrameSyncQuery, wire.FrameSyncPrints:
		// PEERS, SYNC and HAVE start work: a peer repeating them pays
		// as for chat, besides what the work itself costs.
		if d := reserve(c.budget.chat, now, 1); d >= wait {
			wait, what = d, "chat"
		}
	}
	return c.wait(now, wait, what)
}

// chargeWork charges units of work (table rows decoded, log rows read) to
// the connection's gossip budget and waits, as charge does, when it is
// spent. Only the read loop may call it.
func (c *conn) chargeWork(units int) error {
	now := time.Now()
	return c.wait(now, reserve(c.budget.gossip, now, units), "gossip")
}

// chargeNewAuthors charges the origins of batch's live messages (and of
// CATCHUP lines charged as live, catchup.admit) that the log has never
// held to the connection's new-author budget, and waits while it is
// spent. It runs in the ingest loop, so the wait backs up the
// ingest queue, then the read loop, then TCP. A peer that would wait for
// longer than the flood grace is penalized.
func (c *conn) chargeNewAuthors(batch []inbound) error {
	seen := map[eventlog.NodeID]bool{}
	var origins []eventlog.NodeID
	for _, m := range batch {
		if !(m.live || m.charged) || m.synced {
			continue
		}
		if o, _ := m.body.OriginKey(); !seen[o] {
			seen[o] = true
			origins = append(origins, o)
		}
	}
	if len(origins) == 0 {
		return nil
	}
	known, err := c.n.log.KnownOrigins(origins)
	if err != nil {
		return fmt.Errorf("read origin index: %w", err)
	}
	fresh := 0
	for _, k := range known {
		if !k {
			fresh++
		}
	}
	if fresh == 0 {
		return nil
	}
	now := time.Now()
	d := reserve(c.budget.newAuthors, now, fresh)
	if d > c.n.cfg.FloodGrace {
		err := fmt.Errorf("%w: new-author flood, %d more would wait %s", errPenalized, fresh, d.Round(time.Millisecond))
		c.n.penalize(c.id, c.n.cfg.FloodPenalty, err)
		return err
	}
	if d < minBudgetWait {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-c.closing:
		return c.closeErr
	}
}

// wait holds the read loop for d, or penalizes the peer once its waits
// exceed the flood grace.
func (c *conn) wait(now time.Time, d time.Duration, what string) error {
	cfg := &c.n.cfg
	d, err := c.budget.hold(now, d, what, cfg.FloodGrace, cfg.FloodWindow)
	if err != nil {
		c.n.penalize(c.id, cfg.FloodPenalty, err)
		return err
	}
	if d <= 0 {
		return nil
	}
	if c.budget.timer == nil {
		c.budget.timer = time.NewTimer(d)
	} else {
		c.budget.timer.Reset(d)
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
