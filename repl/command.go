package repl

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/p2pchat/p2pchat/eventlog"
)

// Kind says what a line asks for.
type Kind int

// The kinds of input line. The zero Kind is Empty, so a zero Command does
// nothing.
const (
	Empty   Kind = iota // blank or whitespace-only line: nothing happens
	Say                 // broadcast Text
	List                // /l: the other connected users
	Payload             // /p: the PEERS payload this node would send now
	Help                // /help
	Quit                // /quit
	Msg                 // /msg NAME text: private Text to Name
	Nick                // /nick NEW: rename to Name
	Kick                // /kick NAME: disconnect Name and ban it for good
	Ban                 // /ban NAME [duration]: refuse Name for Duration (0: for good)
	Unban               // /unban NAME
	Bans                // /bans: the current bans
	History             // /history [N]: the last N chat lines
	Connect             // /connect HOST:PORT: dial Addr
	Peers               // /peers: every known peer
	Me                  // /me action: broadcast Text, which is "* action"
)

// DefaultHistory is the number of lines /history shows without an argument;
// MaxHistory bounds what one command may ask the node to load.
const (
	DefaultHistory = 20
	MaxHistory     = 10000
)

// maxLineLen bounds one input line in plain mode. It is far above anything
// valid (a /msg is at most a name and 4096 bytes of text), so it only stops
// a runaway input from growing memory without bound.
const maxLineLen = 64 << 10

// Command is one parsed input line. Only the fields that its Kind names are
// set.
type Command struct {
	Kind Kind
	// Text is the chat text to send: for Say the line (or, for "//text",
	// "/text"); for Me "* " followed by the action; for Msg the private
	// text. It always passes eventlog.CheckText.
	Text string
	// Name is the peer a Msg, Kick, Ban or Unban is about (a name or
	// name#shortid), or the new name of a Nick (which passes
	// eventlog.CheckName).
	Name string
	// Duration is how long a Ban lasts; 0 means for good.
	Duration time.Duration
	// N is how many lines History shows.
	N int
	// Addr is the HOST:PORT a Connect dials.
	Addr string
}

// spec describes one slash command: its name, usage and help line. The
// table is the one source for parsing, /help and tab completion.
type spec struct {
	name  string
	kind  Kind
	usage string
	help  string
	// takesName marks commands whose first argument is a peer's name, so
	// that tab completion offers names there.
	takesName bool
}

var specs = []spec{
	{name: "l", kind: List, usage: "/l", help: "list the other connected users, and how peers see you"},
	{name: "p", kind: Payload, usage: "/p", help: "show the PEERS payload this node would send now (JSON)"},
	{name: "msg", kind: Msg, usage: "/msg NAME text", help: "send a private message to NAME", takesName: true},
	{name: "me", kind: Me, usage: "/me action", help: `send "* action" to everyone`},
	{name: "nick", kind: Nick, usage: "/nick NEW", help: "change your name"},
	{name: "kick", kind: Kick, usage: "/kick NAME", help: "disconnect NAME and ban it for good", takesName: true},
	{name: "ban", kind: Ban, usage: "/ban NAME [duration]", help: "refuse NAME, for good or for a duration such as 30m or 2h", takesName: true},
	{name: "unban", kind: Unban, usage: "/unban NAME", help: "lift the ban on NAME", takesName: true},
	{name: "bans", kind: Bans, usage: "/bans", help: "list the bans"},
	{name: "history", kind: History, usage: "/history [N]", help: fmt.Sprintf("show the last N chat lines (default %d)", DefaultHistory)},
	{name: "connect", kind: Connect, usage: "/connect HOST:PORT", help: "dial a peer"},
	{name: "peers", kind: Peers, usage: "/peers", help: "list every peer this node knows of"},
	{name: "help", kind: Help, usage: "/help", help: "show this list"},
	{name: "quit", kind: Quit, usage: "/quit", help: "leave (end of input does the same)"},
}

// lookupSpec finds a slash command by name, ignoring case.
func lookupSpec(name string) (spec, bool) {
	for _, s := range specs {
		if strings.EqualFold(s.name, name) {
			return s, true
		}
	}
	return spec{}, false
}

// specByKind finds the spec of a slash command kind.
func specByKind(k Kind) (spec, bool) {
	for _, s := range specs {
		if s.kind == k {
			return s, true
		}
	}
	return spec{}, false
}

// String returns the command name ("msg") or, for Say and Empty, the kind's
// name.
func (k Kind) String() string {
	switch k {
	case Empty:
		return "empty"
	case Say:
		return "say"
	}
	if s, ok := specByKind(k); ok {
		return s.name
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// HelpText returns one line per command, aligned, without a trailing
// newline.
func HelpText() string {
	rows := [][2]string{}
	for _, s := range specs {
		rows = append(rows, [2]string{s.usage, s.help})
	}
	rows = append(rows,
		[2]string{"//text", `send "/text" literally`},
		[2]string{"text", "send text to everyone"},
		[2]string{`NAME`, `a name, name#shortid when names clash, "quoted" when it has spaces`},
	)
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	var b strings.Builder
	for i, r := range rows {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%-*s  %s", width, r[0], r[1])
	}
	return b.String()
}

// Parse turns one input line (without its line ending) into a Command.
// Lines that do not start with '/' are chat text; "//text" is the chat text
// "/text". A line that would send something invalid is refused with an
// error whose one-line message says why; nothing is sent for it.
func Parse(line string) (Command, error) {
	if strings.TrimSpace(line) == "" {
		return Command{Kind: Empty}, nil
	}
	if !strings.HasPrefix(line, "/") || strings.HasPrefix(line, "//") {
		text := line
		if strings.HasPrefix(line, "//") {
			text = line[1:]
		}
		if err := eventlog.CheckText(text); err != nil {
			return Command{}, err
		}
		return Command{Kind: Say, Text: text}, nil
	}

	word, rest := cutWord(line[1:])
	s, found := lookupSpec(word)
	if !found {
		return Command{}, fmt.Errorf("unknown command /%s (try /help)", printable(shorten(word)))
	}
	usage := errors.New("usage: " + s.usage)
	rest = strings.Trim(rest, " \t")

	switch s.kind {
	case List, Payload, Help, Quit, Bans, Peers:
		if rest != "" {
			return Command{}, usage
		}
		return Command{Kind: s.kind}, nil

	case Msg:
		name, text, err := cutName(rest)
		if err != nil {
			return Command{}, fmt.Errorf("%v; %v", err, usage)
		}
		if name == "" || strings.TrimSpace(text) == "" {
			return Command{}, usage
		}
		if err := checkPeerRef(name); err != nil {
			return Command{}, err
		}
		if err := eventlog.CheckText(text); err != nil {
			return Command{}, err
		}
		return Command{Kind: Msg, Name: name, Text: text}, nil

	case Me:
		if rest == "" {
			return Command{}, usage
		}
		text := "* " + rest
		if err := eventlog.CheckText(text); err != nil {
			return Command{}, err
		}
		return Command{Kind: Me, Text: text}, nil

	case Nick:
		name := unquote(rest)
		if err := eventlog.CheckName(name); err != nil {
			return Command{}, err
		}
		return Command{Kind: Nick, Name: name}, nil

	case Kick, Unban:
		if rest == "" {
			return Command{}, usage
		}
		name := unquote(rest)
		if err := checkPeerRef(name); err != nil {
			return Command{}, err
		}
		return Command{Kind: s.kind, Name: name}, nil

	case Ban:
		name, arg, err := cutName(rest)
		if err != nil {
			return Command{}, fmt.Errorf("%v; %v", err, usage)
		}
		if name == "" {
			return Command{}, usage
		}
		if err := checkPeerRef(name); err != nil {
			return Command{}, err
		}
		var d time.Duration
		if arg != "" {
			d, err = time.ParseDuration(arg)
			if err != nil || d <= 0 {
				return Command{}, fmt.Errorf("%q is not a positive duration such as 30m or 2h (quote a name that has spaces); %v", shorten(arg), usage)
			}
		}
		return Command{Kind: Ban, Name: name, Duration: d}, nil

	case History:
		n := DefaultHistory
		if rest != "" {
			v, err := strconv.Atoi(rest)
			if err != nil || v < 1 || v > MaxHistory {
				return Command{}, fmt.Errorf("%v (N from 1 to %d)", usage, MaxHistory)
			}
			n = v
		}
		return Command{Kind: History, N: n}, nil

	case Connect:
		if rest == "" {
			return Command{}, usage
		}
		if err := eventlog.CheckAddr(rest); err != nil {
			return Command{}, fmt.Errorf("%v; %v", err, usage)
		}
		return Command{Kind: Connect, Addr: rest}, nil
	}
	// Every spec kind is handled above; reaching here is a bug in the table.
	return Command{}, fmt.Errorf("command /%s is not implemented", s.name)
}

// cutWord splits s at its first space or tab.
func cutWord(s string) (word, rest string) {
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// cutName takes the leading name argument off s: a "quoted" name (names
// may contain spaces) or else the first word. rest has its leading blanks
// removed.
func cutName(s string) (name, rest string, err error) {
	if strings.HasPrefix(s, `"`) {
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return "", "", errors.New("unterminated quote in name")
		}
		name, rest = s[1:1+end], s[2+end:]
		if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			return "", "", errors.New("want a space after a quoted name")
		}
		return name, strings.TrimLeft(rest, " \t"), nil
	}
	name, rest = cutWord(s)
	return name, strings.TrimLeft(rest, " \t"), nil
}

// unquote removes one pair of surrounding double quotes, so that every
// command accepts a name the same way /msg does.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// checkPeerRef accepts what a user may type to name a peer: a valid name,
// or name#shortid (hex, up to the full 64 characters) when names clash.
func checkPeerRef(ref string) error {
	name, id, hasID := strings.Cut(ref, "#")
	if err := eventlog.CheckName(name); err != nil {
		return err
	}
	if !hasID {
		return nil
	}
	if id == "" || len(id) > 2*len(eventlog.NodeID{}) || strings.Trim(id, "0123456789abcdefABCDEF") != "" {
		return fmt.Errorf("%q: want name#id with id in hex", shorten(ref))
	}
	return nil
}

// shorten clips what a user typed before it is quoted in a message, so
// that an error stays one readable line.
func shorten(s string) string {
	const limit = 32
	if utf8.RuneCountInString(s) > limit {
		return string([]rune(s)[:limit]) + "…"
	}
	return s
}

// printable escapes control and invalid characters the way %q would, for
// text shown in a message without quotes.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r == utf8.RuneError }) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
