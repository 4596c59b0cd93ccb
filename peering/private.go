package peering

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// Private messages travel only over the direct connection between sender
// and recipient, never relayed. The sender stores each one before sending
// and keeps it in the recipient's outbox (a projection of the log) until
// the recipient acknowledges it, resending the outbox on every connection,
// so a message to an offline peer is delivered when it comes back, also
// across restarts of either side.

// Frame types of private messages.
const (
	FramePrivAck = "PRIVACK"
)

// PrivateMsg is a private message on the wire. Ref is the sender's local
// seq of it: the recipient acknowledges it and ignores a Ref it has seen.
type PrivateMsg struct {
	Ref  uint64 `json:"ref"`
	Name string `json:"name"`
	Text string `json:"text"`
	Time int64  `json:"time"`
}

// PrivAckMsg acknowledges a private message.
type PrivAckMsg struct {
	Ref uint64 `json:"ref"`
}

// Msg sends a private message to the peer ref names.
func (n *Node) Msg(ctx context.Context, ref, text string) error {
	if err := eventlog.CheckText(text); err != nil {
		return err
	}
	id, err := n.resolveOther(ref, "message")
	if err != nil {
		return err
	}
	if n.isBanned(id) {
		return fmt.Errorf("%s is banned", ref)
	}
	p, _, err := n.log.Peer(id)
	if err != nil {
		return err
	}
	if len(p.Outbox) >= eventlog.MaxOutbox {
		return fmt.Errorf("%d messages to %s are waiting for delivery already", len(p.Outbox), ref)
	}
	res, err := n.log.Append(ctx, eventlog.Private{From: n.self, To: id, Name: n.Name(), Text: text, SentTime: time.Now()})
	if err != nil {
		return fmt.Errorf("store private message: %w", err)
	}
	sent := res[0].Body.(eventlog.Private)
	n.display.ShowPrivate(sent.SentTime, n.label(n.self, sent.Name), text)
	n.mu.Lock()
	c := n.conns[id]
	n.mu.Unlock()
	if c != nil {
		c.privMu.Lock()
		defer c.privMu.Unlock()
		// Until the connection's outbox flush has run, the message goes
		// with it: it is in the outbox already, behind older ones.
		if c.outboxFlushed {
			c.sendMsg(FramePrivate, privateMsg(res[0].Seq, sent))
		}
		return nil
	}
	n.display.ShowSystem(fmt.Sprintf("%s is not connected; the message will be delivered when they are", n.label(id, p.Name)))
	n.learn(id, p.Addrs)
	return nil
}

func privateMsg(seq uint64, p eventlog.Private) PrivateMsg {
	return PrivateMsg{Ref: seq, Name: p.Name, Text: p.Text, Time: p.SentTime.UnixNano()}
}

// flushOutbox sends a newly connected peer what is waiting for it, oldest
// first, before any private message typed from now on.
func (n *Node) flushOutbox(c *conn) error {
	c.privMu.Lock()
	defer c.privMu.Unlock()
	p, _, err := n.log.Peer(c.id)
	if err != nil {
		return err // new messages wait in the outbox for the next connection
	}
	for _, seq := range p.Outbox {
		e, found, err := n.log.Get(seq)
		if err != nil {
			return err
		}
		if priv, ok := e.Body.(eventlog.Private); found && ok {
			c.sendMsg(FramePrivate, privateMsg(seq, priv))
		}
	}
	c.outboxFlushed = true
	return nil
}

// onPrivate stores, shows and acknowledges a private message.
func (n *Node) onPrivate(ctx context.Context, c *conn, payload []byte) error {
	var m PrivateMsg
	if err := decodeStrict(payload, &m); err != nil {
		return violation(fmt.Errorf("PRIVATE: %w", err))
	}
	if err := eventlog.CheckText(m.Text); err != nil {
		return violation(fmt.Errorf("PRIVATE: %w", err))
	}
	if err := eventlog.CheckName(m.Name); err != nil {
		return violation(fmt.Errorf("PRIVATE: %w", err))
	}
	p, _, err := n.log.Peer(c.id)
	if err != nil {
		return err
	}
	if m.Ref > p.PrivateRef {
		priv := eventlog.Private{From: c.id, To: n.self, Name: m.Name, Text: m.Text, SentTime: time.Unix(0, m.Time), Ref: m.Ref}
		if _, err := n.log.Append(ctx, priv); err != nil {
			return fmt.Errorf("store private message: %w", err)
		}
		n.display.ShowPrivate(priv.SentTime, n.label(c.id, m.Name), m.Text)
	}
	c.sendMsg(FramePrivAck, PrivAckMsg{Ref: m.Ref})
	return nil
}

// onPrivAck takes an acknowledged message out of the peer's outbox.
func (n *Node) onPrivAck(ctx context.Context, c *conn, payload []byte) error {
	var m PrivAckMsg
	if err := decodeStrict(payload, &m); err != nil {
		return violation(fmt.Errorf("PRIVACK: %w", err))
	}
	p, _, err := n.log.Peer(c.id)
	if err != nil {
		return err
	}
	if !slices.Contains(p.Outbox, m.Ref) {
		return nil // acknowledged before, or never sent: nothing to record
	}
	if _, err := n.log.Append(ctx, eventlog.Delivered{To: c.id, Seq: m.Ref}); err != nil {
		return fmt.Errorf("store delivery: %w", err)
	}
	return nil
}
