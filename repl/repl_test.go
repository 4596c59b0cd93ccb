package repl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2pchat/p2pchat/eventlog"
)

// runScript runs a plain-mode REPL over input until it ends and returns
// the output lines.
func runScript(t *testing.T, node Node, input string) []string {
	t.Helper()
	var out lineRecorder
	r := New(strings.NewReader(input), &out, Options{})
	if err := r.Run(context.Background(), node); err != nil {
		t.Fatalf("Run: %v", err)
	}
	out.check(t)
	return out.Lines()
}

func testID(b byte) eventlog.NodeID {
	var id eventlog.NodeID
	for i := range id {
		id[i] = b
	}
	return id
}

func TestRunPlain(t *testing.T) {
	since := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	hms := since.Local().Format(time.DateTime) // not today: with the date
	users := []User{
		{Name: "Carol", ID: testID(0xcc), Addr: "10.0.0.3:8082", Since: since},
		{Name: "Bob", ID: testID(0xbb), Addr: "10.0.0.2:8081", Since: since},
	}
	tests := []struct {
		name      string
		input     string
		users     []User
		err       error
		wantCalls []string
		wantOut   []string
	}{
		{
			name:      "chat lines are said",
			input:     "hello\nsecond line\n",
			wantCalls: []string{`say "hello"`, `say "second line"`},
		},
		{
			name:      "double slash sends a slash",
			input:     "//quit\n",
			wantCalls: []string{`say "/quit"`},
		},
		{
			name:      "me is said as an action",
			input:     "/me waves\n",
			wantCalls: []string{`say "* waves"`},
		},
		{
			name:    "empty lines do nothing",
			input:   "\n   \n\t\n",
			wantOut: []string{},
		},
		{
			name:    "unknown command sends nothing",
			input:   "/x\n",
			wantOut: []string{"*** unknown command /x (try /help)"},
		},
		{
			name:    "invalid text sends nothing",
			input:   "bad\x1b[2J\n" + strings.Repeat("x", 5000) + "\n",
			wantOut: []string{"*** text contains a control or invalid character", "*** text is 5000 bytes, the limit is 4096"},
		},
		{
			name:      "windows line endings",
			input:     "hi\r\n/quit\r\n",
			wantCalls: []string{`say "hi"`},
		},
		{
			name:      "last line without newline",
			input:     "hi",
			wantCalls: []string{`say "hi"`},
		},
		{
			name:      "quit stops reading",
			input:     "before\n/quit\nafter\n",
			wantCalls: []string{`say "before"`},
		},
		{
			name:    "list with no one",
			input:   "/l\n",
			wantOut: []string{"*** no one else is connected"},
		},
		{
			name:  "list sorted by name",
			input: "/l\n",
			users: users,
			wantOut: []string{
				"Bob    bbbbbbbb  10.0.0.2:8081  since " + hms,
				"Carol  cccccccc  10.0.0.3:8082  since " + hms,
			},
		},
		{
			name:    "payload",
			input:   "/p\n",
			wantOut: []string{`{"peers":[]}`},
		},
		{
			name:      "node errors are shown and the REPL goes on",
			input:     "hello\n/p\nagain\n",
			err:       errBoom,
			wantCalls: []string{`say "hello"`, `say "again"`},
			wantOut:   []string{"*** error: boom", "*** error: boom", "*** error: boom"},
		},
		{
			name:  "optional commands are not available on a basic node",
			input: "/msg Bob hi\n/nick Carol\n/kick Bob\n/ban Bob\n/unban Bob\n/bans\n/history\n/connect h:1\n/peers\n",
			wantOut: []string{
				"*** /msg is not available", "*** /nick is not available", "*** /kick is not available",
				"*** /ban is not available", "*** /unban is not available", "*** /bans is not available",
				"*** /history is not available", "*** /connect is not available", "*** /peers is not available",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := &basicNode{users: tt.users, payload: []byte(`{"peers":[]}`), err: tt.err}
			out := runScript(t, node, tt.input)
			if tt.wantOut != nil && fmt.Sprintf("%q", out) != fmt.Sprintf("%q", tt.wantOut) {
				t.Errorf("output = %q\nwant     %q", out, tt.wantOut)
			}
			if got := node.Calls(); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.wantCalls) {
				t.Errorf("calls = %q, want %q", got, tt.wantCalls)
			}
		})
	}
}

func TestRunShowsHelp(t *testing.T) {
	out := runScript(t, &basicNode{}, "/help\n")
	if got, want := strings.Join(out, "\n"), HelpText(); got != want {
		t.Fatalf("help output:\n%s\nwant:\n%s", got, want)
	}
}

func TestRunOptionalCommands(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	hms := at.Local().Format(time.DateTime) // not today: with the date
	full := at.Local().Format(time.DateTime)
	tests := []struct {
		name     string
		input    string
		node     *fullNode
		wantCall string
		wantOut  []string
	}{
		{name: "msg", input: `/msg "Alice Smith" hi there`, wantCall: `msg "Alice Smith" "hi there"`},
		{name: "nick", input: "/nick Carol", wantCall: `nick "Carol"`},
		{name: "kick", input: "/kick bob#bbbb", wantCall: `kick "bob#bbbb"`},
		{name: "ban for good", input: "/ban Bob", wantCall: `ban "Bob" 0s`},
		{name: "ban for a while", input: "/ban Bob 90m", wantCall: `ban "Bob" 1h30m0s`},
		{name: "unban", input: "/unban Bob", wantCall: `unban "Bob"`},
		{name: "connect", input: "/connect 127.0.0.1:8080", wantCall: `connect "127.0.0.1:8080"`},
		{name: "no bans", input: "/bans", wantCall: "bans", wantOut: []string{"*** no one is banned"}},
		{
			name: "bans", input: "/bans", wantCall: "bans",
			node: &fullNode{bans: []BanEntry{
				{Name: "Bob", ID: testID(0xbb)},
				{Name: "Mallory", ID: testID(0xee), Until: at, Reason: "spam"},
			}},
			wantOut: []string{"Bob      bbbbbbbb  for good", "Mallory  eeeeeeee  until " + full + "  (spam)"},
		},
		{name: "no history", input: "/history 3", wantCall: "history 3", wantOut: []string{"*** no chat history"}},
		{
			name: "history", input: "/history", wantCall: "history 20",
			node: &fullNode{history: []HistoryLine{
				{Time: at, Name: "Bob", Text: "hi"},
				{Time: at, Name: "Carol", Text: "psst", Private: true},
				{Time: at, Name: "Me", Text: "psst back", Private: true, To: "Carol"},
			}},
			wantOut: []string{hms + " <Bob> hi", hms + " [private] <Carol> psst", hms + " [private to Carol] <Me> psst back"},
		},
		{name: "list before peers said how they see this node", input: "/l", wantCall: "reach", wantOut: []string{"*** no one else is connected"}},
		{
			name: "list says how peers see this node", input: "/l", wantCall: "reach",
			node:    &fullNode{reach: "peers see you at 198.51.100.4:7000 but cannot dial you there"},
			wantOut: []string{"*** no one else is connected", "*** peers see you at 198.51.100.4:7000 but cannot dial you there"},
		},
		{name: "no peers", input: "/peers", wantCall: "peers", wantOut: []string{"*** no known peers"}},
		{
			name: "peers", input: "/peers", wantCall: "peers",
			node: &fullNode{peers: []KnownPeer{
				{Name: "Bob", ID: testID(0xbb), Addrs: []string{"a:1", "b:2"}, Connected: true},
				{Name: "Dave", ID: testID(0xdd), LastSeen: at, Banned: true},
				{Name: "Eve", ID: testID(0xee), Addrs: []string{"e:5"}},
			}},
			wantOut: []string{
				"Bob   bbbbbbbb  a:1,b:2  connected",
				"Dave  dddddddd  -  last seen " + full + "  banned",
				"Eve   eeeeeeee  e:5  never seen",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := tt.node
			if node == nil {
				node = &fullNode{}
			}
			out := runScript(t, node, tt.input+"\n")
			if got := node.Calls(); len(got) != 1 || got[0] != tt.wantCall {
				t.Errorf("calls = %q, want [%q]", got, tt.wantCall)
			}
			if fmt.Sprintf("%q", out) != fmt.Sprintf("%q", tt.wantOut) {
				t.Errorf("output = %q\nwant     %q", out, tt.wantOut)
			}
		})
	}
}

func TestRunShowsOptionalCommandErrors(t *testing.T) {
	node := &fullNode{basicNode: basicNode{err: errBoom}}
	out := runScript(t, node, "/msg Bob hi\n/bans\n/history\n/peers\n")
	want := []string{"*** error: boom", "*** error: boom", "*** error: boom", "*** error: boom"}
	if fmt.Sprintf("%q", out) != fmt.Sprintf("%q", want) {
		t.Fatalf("output = %q, want %q", out, want)
	}
}

func TestRunRefusesOverlongLineAndGoesOn(t *testing.T) {
	node := &basicNode{}
	out := runScript(t, node, strings.Repeat("x", maxLineLen+10)+"\nok\n")
	want := []string{fmt.Sprintf("*** line is longer than %d bytes; nothing sent", maxLineLen)}
	if fmt.Sprintf("%q", out) != fmt.Sprintf("%q", want) {
		t.Errorf("output = %q, want %q", out, want)
	}
	if got := node.Calls(); len(got) != 1 || got[0] != `say "ok"` {
		t.Errorf("calls = %q, want the line after the long one", got)
	}
}

func TestRunReturnsWhenContextEndsWhileReading(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close() // ends the reader goroutine: an io.Pipe cannot be interrupted
	node := &basicNode{}
	r := New(pr, io.Discard, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, node) }()

	if _, err := io.WriteString(pw, "first\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the first line", func() bool { return len(node.Calls()) == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestRunLeavesNoGoroutineOnAFileInput(t *testing.T) {
	// An os.Pipe supports read deadlines: Run interrupts its blocked read
	// and returns with nothing left behind, and clears the deadline again.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	ignore := goleak.IgnoreCurrent()

	node := &basicNode{}
	r := New(pr, io.Discard, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, node) }()
	if _, err := pw.WriteString("first\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the first line", func() bool { return len(node.Calls()) == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	goleak.VerifyNone(t, ignore)

	if _, err := pw.WriteString("later\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := pr.Read(buf)
	if err != nil || string(buf[:n]) != "later\n" {
		t.Fatalf("reading after Run: %q, %v; want the input usable again", buf[:n], err)
	}
}

func TestRunRefusesASecondConcurrentRun(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	r := New(pr, io.Discard, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, &basicNode{}) }()
	waitFor(t, 5*time.Second, "Run to start", r.running.Load)
	if err := r.Run(context.Background(), &basicNode{}); err == nil {
		t.Error("second Run = nil, want an error")
	}
	cancel()
	<-done
}

func TestDisplayWorksBeforeAndAfterRun(t *testing.T) {
	var out lineRecorder
	r := New(strings.NewReader("/quit\n"), &out, Options{})
	r.Display().ShowSystem("before")
	if err := r.Run(context.Background(), &basicNode{}); err != nil {
		t.Fatal(err)
	}
	r.Display().ShowSystem("after")
	out.check(t)
	if got := out.Lines(); fmt.Sprint(got) != "[*** before *** after]" {
		t.Fatalf("lines = %q", got)
	}
}
