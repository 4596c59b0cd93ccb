package main

import (
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/repl"
)

// toHistoryLine turns an event of the history (eventlog.LastLines) into the
// line every view shows: a chat line, or a private message this node sent
// or received, opened with its key (or, from an earlier release, stored in
// the clear). ok is false for anything else,
// including a private message that does not open, which is never shown.
func toHistoryLine(log *eventlog.Log, e eventlog.Event) (line repl.HistoryLine, ok bool) {
	switch b := e.Body.(type) {
	case eventlog.Chat:
		return repl.HistoryLine{Time: b.OriginTime, Name: b.Name, Text: b.Text}, true
	case eventlog.Sealed:
		text, err := b.Open(log.Key())
		if err != nil {
			return line, false
		}
		line = repl.HistoryLine{Time: b.OriginTime, Name: b.Name, Text: text, Private: true}
		if b.Origin == log.Self() {
			line.To = peerName(log, b.To)
		}
		return line, true
	case eventlog.Private: // direct and unsealed, from an earlier release
		line = repl.HistoryLine{Time: b.SentTime, Name: b.Name, Text: b.Text, Private: true}
		if b.From == log.Self() {
			line.To = peerName(log, b.To)
		}
		return line, true
	}
	return line, false
}

// peerName is the name the peer table has for id, or its short form.
func peerName(log *eventlog.Log, id eventlog.NodeID) string {
	if p, found, err := log.Peer(id); err == nil && found && p.Name != "" {
		return p.Name
	}
	return id.Short()
}

// toHistoryLines converts events with toHistoryLine, dropping what it refuses.
func toHistoryLines(log *eventlog.Log, events []eventlog.Event) []repl.HistoryLine {
	out := make([]repl.HistoryLine, 0, len(events))
	for _, e := range events {
		if l, ok := toHistoryLine(log, e); ok {
			out = append(out, l)
		}
	}
	return out
}

// privateJSON is how `history --json` prints a private message: the event's
// fields a reader needs, with the text opened instead of the sealed boxes.
type privateJSON struct {
	Seq    uint64          `json:"seq"`
	Time   time.Time       `json:"time"`
	Type   string          `json:"type"`
	Origin eventlog.NodeID `json:"origin"`
	Name   string          `json:"name"`
	To     eventlog.NodeID `json:"to"`
	Text   string          `json:"text"`
}
