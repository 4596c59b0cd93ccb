package repl

import (
	"fmt"
	"strings"
	"time"
)

// The formatters here make each kind of line in one place, so that a chat
// line or a peer table reads the same in the REPL and in the reading
// commands (p2pchat history, p2pchat peers). They return text as it is;
// whoever prints it passes it through Sanitize (Display does).

// Stamp is the time shown before a line, in local time: the time of day
// for a moment of today, and the date too for any other day, so that last
// week's line never passes for today's.
func Stamp(t, now time.Time) string {
	t, now = t.Local(), now.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format(time.TimeOnly)
	}
	return t.Format(time.DateTime)
}

// ChatLine is a public chat line: "STAMP <name> text".
func ChatLine(stamp, name, text string) string {
	return stamp + " <" + name + "> " + text
}

// PrivateLine is a private message as its recipient sees it:
// "STAMP [private] <name> text".
func PrivateLine(stamp, name, text string) string {
	return stamp + " [private] <" + name + "> " + text
}

// PrivateToLine is a private message as its sender sees it:
// "STAMP [private to Carol] <name> text".
func PrivateToLine(stamp, to, name, text string) string {
	return stamp + " [private to " + to + "] <" + name + "> " + text
}

// HistoryText is a line of history as it was shown when it happened.
func HistoryText(stamp string, l HistoryLine) string {
	switch {
	case l.Private && l.To != "":
		return PrivateToLine(stamp, l.To, l.Name, l.Text)
	case l.Private:
		return PrivateLine(stamp, l.Name, l.Text)
	}
	return ChatLine(stamp, l.Name, l.Text)
}

// PeerRows is the peer table, one row per peer: name, short ID,
// addresses, connected or when last seen, dial failures, and whether it
// is banned. Names are aligned to the longest (up to the name limit).
func PeerRows(peers []KnownPeer, now time.Time) []string {
	w := nameWidth(peers, func(p KnownPeer) string { return p.Name })
	rows := make([]string, 0, len(peers))
	for _, p := range peers {
		state := "never seen"
		switch {
		case p.Connected:
			state = "connected"
		case !p.LastSeen.IsZero():
			state = "last seen " + Stamp(p.LastSeen, now)
		}
		addrs := strings.Join(p.Addrs, ",")
		if addrs == "" {
			addrs = "-"
		}
		row := fmt.Sprintf("%-*s  %s  %s  %s", w, p.Name, p.ID.Short(), addrs, state)
		if p.DialFailures > 0 {
			row += fmt.Sprintf("  dial failures %d", p.DialFailures)
		}
		if p.Banned {
			row += "  banned"
		}
		rows = append(rows, row)
	}
	return rows
}
