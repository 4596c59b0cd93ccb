package repl

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

func TestParse(t *testing.T) {
	long33 := strings.Repeat("x", 33)
	tests := []struct {
		line    string
		want    Command
		wantErr string
	}{
		// Chat text.
		{line: "hello", want: Command{Kind: Say, Text: "hello"}},
		{line: "  hello  ", want: Command{Kind: Say, Text: "  hello  "}},
		{line: "hi\tthere", want: Command{Kind: Say, Text: "hi\tthere"}},
		{line: "//quit", want: Command{Kind: Say, Text: "/quit"}},
		{line: "//", want: Command{Kind: Say, Text: "/"}},
		{line: " /quit", want: Command{Kind: Say, Text: " /quit"}},
		{line: "a\x1b[2Jb", wantErr: "text contains a control or invalid character"},
		{line: "bad \xff byte", wantErr: "text contains a control or invalid character"},
		{line: strings.Repeat("x", eventlog.MaxTextLen), want: Command{Kind: Say, Text: strings.Repeat("x", eventlog.MaxTextLen)}},
		{line: strings.Repeat("x", eventlog.MaxTextLen+1), wantErr: "text is 4097 bytes, the limit is 4096"},
		{line: "//" + strings.Repeat("x", eventlog.MaxTextLen), wantErr: "text is 4097 bytes, the limit is 4096"},

		// Nothing.
		{line: "", want: Command{Kind: Empty}},
		{line: " \t ", want: Command{Kind: Empty}},

		// Commands without arguments.
		{line: "/l", want: Command{Kind: List}},
		{line: "/L", want: Command{Kind: List}},
		{line: "/l ", want: Command{Kind: List}},
		{line: "/l everyone", wantErr: "usage: /l"},
		{line: "/p", want: Command{Kind: Payload}},
		{line: "/help", want: Command{Kind: Help}},
		{line: "/quit", want: Command{Kind: Quit}},
		{line: "/quit now", wantErr: "usage: /quit"},
		{line: "/bans", want: Command{Kind: Bans}},
		{line: "/peers", want: Command{Kind: Peers}},

		// Unknown commands.
		{line: "/x", wantErr: "unknown command /x (try /help)"},
		{line: "/x some args", wantErr: "unknown command /x (try /help)"},
		{line: "/", wantErr: "unknown command / (try /help)"},
		{line: "/li", wantErr: "unknown command /li (try /help)"},
		{line: "/a\x1bb", wantErr: `unknown command /a\x1bb (try /help)`},
		{line: "/" + strings.Repeat("y", 40), wantErr: "unknown command /" + strings.Repeat("y", 32) + "… (try /help)"},

		// /msg
		{line: "/msg Bob hi there", want: Command{Kind: Msg, Name: "Bob", Text: "hi there"}},
		{line: "/msg  Bob \t hi  there", want: Command{Kind: Msg, Name: "Bob", Text: "hi  there"}},
		{line: `/msg "Alice Smith" hi`, want: Command{Kind: Msg, Name: "Alice Smith", Text: "hi"}},
		{line: "/msg bob#3f2a9c1d hi", want: Command{Kind: Msg, Name: "bob#3f2a9c1d", Text: "hi"}},
		{line: "/msg", wantErr: "usage: /msg NAME text"},
		{line: "/msg Bob", wantErr: "usage: /msg NAME text"},
		{line: "/msg Bob   ", wantErr: "usage: /msg NAME text"},
		{line: `/msg "Alice hi`, wantErr: "unterminated quote in name; usage: /msg NAME text"},
		{line: `/msg "Alice"hi`, wantErr: "want a space after a quoted name; usage: /msg NAME text"},
		{line: "/msg bob#xyz hi", wantErr: `"bob#xyz": want name#id with id in hex`},
		{line: "/msg bob# hi", wantErr: `"bob#": want name#id with id in hex`},
		{line: "/msg Bob ring\x07", wantErr: "text contains a control or invalid character"},
		{line: "/msg Bob " + strings.Repeat("x", eventlog.MaxTextLen+1), wantErr: "text is 4097 bytes, the limit is 4096"},

		// /nick
		{line: "/nick Carol", want: Command{Kind: Nick, Name: "Carol"}},
		{line: "/nick  Carol Ann ", want: Command{Kind: Nick, Name: "Carol Ann"}},
		{line: `/nick "Carol Ann"`, want: Command{Kind: Nick, Name: "Carol Ann"}},
		{line: "/nick", wantErr: "name is empty"},
		{line: "/nick " + long33, wantErr: fmt.Sprintf("name %q is longer than 32 characters", long33)},
		{line: "/nick Bo\x01b", wantErr: `name "Bo\x01b" contains a control or invalid character`},
		{line: "/nick Bo#b", wantErr: `name "Bo#b" contains '#', which is reserved for name#id`},

		// /kick, /unban
		{line: "/kick Bob", want: Command{Kind: Kick, Name: "Bob"}},
		{line: "/kick Alice Smith", want: Command{Kind: Kick, Name: "Alice Smith"}},
		{line: "/kick", wantErr: "usage: /kick NAME"},
		{line: "/kick Bo\x00b", wantErr: `name "Bo\x00b" contains a control or invalid character`},
		{line: "/unban bob#3F2A", want: Command{Kind: Unban, Name: "bob#3F2A"}},
		{line: "/unban", wantErr: "usage: /unban NAME"},

		// /ban
		{line: "/ban Bob", want: Command{Kind: Ban, Name: "Bob"}},
		{line: "/ban Bob 30m", want: Command{Kind: Ban, Name: "Bob", Duration: 30 * time.Minute}},
		{line: `/ban "Alice Smith" 2h`, want: Command{Kind: Ban, Name: "Alice Smith", Duration: 2 * time.Hour}},
		{line: "/ban", wantErr: "usage: /ban NAME [duration]"},
		{line: "/ban Bob soon", wantErr: `"soon" is not a positive duration such as 30m or 2h (quote a name that has spaces); usage: /ban NAME [duration]`},
		{line: "/ban Bob -5m", wantErr: `"-5m" is not a positive duration such as 30m or 2h (quote a name that has spaces); usage: /ban NAME [duration]`},
		{line: "/ban Bob 0s", wantErr: `"0s" is not a positive duration such as 30m or 2h (quote a name that has spaces); usage: /ban NAME [duration]`},

		// /history
		{line: "/history", want: Command{Kind: History, N: DefaultHistory}},
		{line: "/history 5", want: Command{Kind: History, N: 5}},
		{line: "/history 10000", want: Command{Kind: History, N: 10000}},
		{line: "/history 0", wantErr: "usage: /history [N] (N from 1 to 10000)"},
		{line: "/history -3", wantErr: "usage: /history [N] (N from 1 to 10000)"},
		{line: "/history 10001", wantErr: "usage: /history [N] (N from 1 to 10000)"},
		{line: "/history lots", wantErr: "usage: /history [N] (N from 1 to 10000)"},

		// /connect
		{line: "/connect 127.0.0.1:8080", want: Command{Kind: Connect, Addr: "127.0.0.1:8080"}},
		{line: "/connect [::1]:9", want: Command{Kind: Connect, Addr: "[::1]:9"}},
		{line: "/connect example.org:65535", want: Command{Kind: Connect, Addr: "example.org:65535"}},
		{line: "/connect", wantErr: "usage: /connect HOST:PORT"},
		{line: "/connect host", wantErr: `address "host": missing port in address; usage: /connect HOST:PORT`},
		{line: "/connect :8080", wantErr: `address ":8080": host is empty; usage: /connect HOST:PORT`},
		{line: "/connect h:0", wantErr: `address "h:0": port must be a number from 1 to 65535; usage: /connect HOST:PORT`},
		{line: "/connect h:65536", wantErr: `address "h:65536": port must be a number from 1 to 65535; usage: /connect HOST:PORT`},
		{line: "/connect h:http", wantErr: `address "h:http": port must be a number from 1 to 65535; usage: /connect HOST:PORT`},
		{line: "/connect h:+80", wantErr: `address "h:+80": port must be a number from 1 to 65535; usage: /connect HOST:PORT`},

		// /me
		{line: "/me waves", want: Command{Kind: Me, Text: "* waves"}},
		{line: "/me  waves  twice ", want: Command{Kind: Me, Text: "* waves  twice"}},
		{line: "/me", wantErr: "usage: /me action"},
		{line: "/me " + strings.Repeat("x", eventlog.MaxTextLen-1), wantErr: "text is 4097 bytes, the limit is 4096"},
	}
	for _, tt := range tests {
		name := tt.line
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tt.line)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %+v, want error %q", tt.line, got, tt.wantErr)
				}
				if err.Error() != tt.wantErr {
					t.Fatalf("Parse(%q) error = %q, want %q", tt.line, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tt.line, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.line, got, tt.want)
			}
		})
	}
}

func TestHelpTextListsEveryCommandOnOneLine(t *testing.T) {
	lines := strings.Split(HelpText(), "\n")
	for _, s := range specs {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, s.usage+" ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("help has %d lines for %s, want 1:\n%s", n, s.usage, HelpText())
		}
	}
	for _, form := range []string{"//text", "text"} {
		if !strings.Contains(HelpText(), "\n"+form+" ") {
			t.Errorf("help does not explain %q", form)
		}
	}
}

func TestEveryCommandParsesFromItsUsage(t *testing.T) {
	// Filling each usage line with sample arguments must parse to the
	// command's own kind: the table, the parser and the help agree.
	fill := strings.NewReplacer("NAME", "Bob", "NEW", "Carol", "text", "hi", "action", "waves",
		"[duration]", "1h", "[N]", "3", "HOST:PORT", "localhost:80")
	for _, s := range specs {
		line := fill.Replace(s.usage)
		cmd, err := Parse(line)
		if err != nil || cmd.Kind != s.kind {
			t.Errorf("Parse(%q) = %v, %v; want kind %v", line, cmd.Kind, err, s.kind)
		}
		if got := cmd.Kind.String(); got != s.name {
			t.Errorf("Kind(%d).String() = %q, want %q", cmd.Kind, got, s.name)
		}
	}
}

// commandSeeds holds every command form, valid and invalid.
var commandSeeds = []string{
	"", " ", "hello", "//text", "//", "/", "/l", "/p", "/help", "/quit", "/bans", "/peers",
	"/msg Bob hi", `/msg "Alice Smith" hi`, "/msg bob#3f2a9c1d hi", "/msg Bob",
	"/nick Carol", "/nick", "/kick Bob", "/ban Bob", "/ban Bob 30m", "/ban Bob -1s",
	"/unban Bob", "/history", "/history 5", "/history 0", "/connect 127.0.0.1:8080",
	"/connect [::1]:9", "/connect host", "/me waves", "/me", "/x", "a\x1bb", "\xff",
	"/msg \"", "/ban \"x\" 1h", "/MSG Bob hi",
}

func FuzzCommand(f *testing.F) {
	for _, s := range commandSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := Parse(line)
		if err != nil {
			msg := err.Error()
			if msg == "" || strings.ContainsFunc(msg, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("Parse(%q): error %q is not one printable line", line, msg)
			}
			return
		}
		if cmd.Kind == Empty && strings.TrimSpace(line) != "" {
			t.Fatalf("Parse(%q) = Empty for a line with content", line)
		}
		switch cmd.Kind {
		case Say:
			if strings.HasPrefix(line, "/") && !strings.HasPrefix(line, "//") {
				t.Fatalf("Parse(%q) = Say for a command line", line)
			}
			fallthrough
		case Me, Msg:
			if err := eventlog.CheckText(cmd.Text); err != nil {
				t.Fatalf("Parse(%q) = %v with text %q: %v", line, cmd.Kind, cmd.Text, err)
			}
		}
		switch cmd.Kind {
		case Me:
			if !strings.HasPrefix(cmd.Text, "* ") {
				t.Fatalf("Parse(%q): /me text %q", line, cmd.Text)
			}
		case Nick:
			if err := eventlog.CheckName(cmd.Name); err != nil {
				t.Fatalf("Parse(%q): nick %q: %v", line, cmd.Name, err)
			}
		case Msg, Kick, Ban, Unban:
			if err := checkPeerRef(cmd.Name); err != nil {
				t.Fatalf("Parse(%q): name %q: %v", line, cmd.Name, err)
			}
			if cmd.Duration < 0 {
				t.Fatalf("Parse(%q): negative duration", line)
			}
		case History:
			if cmd.N < 1 || cmd.N > MaxHistory {
				t.Fatalf("Parse(%q): N = %d", line, cmd.N)
			}
		case Connect:
			if _, _, err := net.SplitHostPort(cmd.Addr); err != nil {
				t.Fatalf("Parse(%q): addr %q: %v", line, cmd.Addr, err)
			}
		}
	})
}
