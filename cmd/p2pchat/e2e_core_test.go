package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/internal/control"
	"github.com/p2pchat/p2pchat/internal/e2e"
)

// historyLine matches a line of `p2pchat history`.
var historyLine = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d <([^>]+)> (.*)$`)

// historyTexts runs `history` on dir with extra flags and returns
// "<name> text" of each line, failing the test on anything else.
func historyTexts(t *testing.T, dir string, extra ...string) []string {
	t.Helper()
	return parseHistory(t, p2pchat.Run(t, append([]string{"history", "--data-dir", dir}, extra...)...))
}

func parseHistory(t *testing.T, res e2e.Result) []string {
	t.Helper()
	if res.Code != 0 {
		t.Fatalf("history exited %d: %s", res.Code, res.Stderr)
	}
	var out []string
	for _, l := range res.Lines() {
		m := historyLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("history line %q does not read \"YYYY-MM-DD HH:MM:SS <NAME> text\"", l)
		}
		out = append(out, fmt.Sprintf("<%s> %s", m[1], m[2]))
	}
	return out
}

// jsonLines runs a reading command and decodes each stdout line as one
// JSON object.
func jsonLines(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	return parseJSONLines(t, p2pchat.Run(t, args...), args[0])
}

func parseJSONLines(t *testing.T, res e2e.Result, cmd string) []map[string]any {
	t.Helper()
	if res.Code != 0 {
		t.Fatalf("%s exited %d: %s", cmd, res.Code, res.Stderr)
	}
	var out []map[string]any
	for _, l := range res.Lines() {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%s: line %q is not a JSON object: %v", cmd, l, err)
		}
		out = append(out, v)
	}
	return out
}

func TestANodeFedFiftyLinesKeepsThemAcrossARestart(t *testing.T) {
	t.Parallel()
	alice := startNode(t, "Alice")
	dir := alice.DataDir
	var want []string
	for i := 1; i <= 50; i++ {
		text := fmt.Sprintf("line %02d of fifty", i)
		alice.Send(text)
		want = append(want, "<Alice> "+text)
	}
	alice.CloseStdin()
	if code := alice.Wait(); code != 0 {
		t.Fatalf("node fed 50 lines then end of input exited %d, want 0", code)
	}

	t.Run("history prints every line in order", func(t *testing.T) {
		if got := historyTexts(t, dir); !slices.Equal(got, want) {
			t.Errorf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})

	t.Run("history -n 5 prints exactly the last five", func(t *testing.T) {
		if got := historyTexts(t, dir, "-n", "5"); !slices.Equal(got, want[45:]) {
			t.Errorf("history -n 5:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want[45:], "\n"))
		}
	})

	t.Run("history --json prints one CHAT event per line", func(t *testing.T) {
		events := jsonLines(t, "history", "--data-dir", dir, "--json")
		if len(events) != 50 {
			t.Fatalf("history --json printed %d lines, want 50", len(events))
		}
		for i, e := range events {
			if e["type"] != "CHAT" || e["name"] != "Alice" || e["text"] != fmt.Sprintf("line %02d of fifty", i+1) {
				t.Errorf("history --json line %d: %v", i+1, e)
			}
			for _, field := range []string{"seq", "time", "origin", "origin_seq", "origin_time", "sig"} {
				if _, ok := e[field]; !ok {
					t.Errorf("history --json line %d lacks %q: %v", i+1, field, e)
				}
			}
		}
	})

	t.Run("events --json shows the CHAT events", func(t *testing.T) {
		var texts []string
		for _, e := range jsonLines(t, "events", "--data-dir", dir, "--json") {
			if _, ok := e["type"].(string); !ok {
				t.Errorf("event without a type: %v", e)
			}
			if e["type"] == "CHAT" {
				texts = append(texts, fmt.Sprintf("<%v> %v", e["name"], e["text"]))
			}
		}
		if !slices.Equal(texts, want) {
			t.Errorf("CHAT events:\n%s\nwant:\n%s", strings.Join(texts, "\n"), strings.Join(want, "\n"))
		}
	})

	t.Run("verify finds the log and projection agree", func(t *testing.T) {
		res := p2pchat.Run(t, "verify", "--data-dir", dir)
		if res.Code != 0 || !strings.HasPrefix(res.Stdout, "ok: 50 events") {
			t.Errorf("verify exited %d with %q (stderr %q), want 0 and \"ok: 50 events, ...\"", res.Code, res.Stdout, res.Stderr)
		}
	})

	// Last: the restarted node may add events of its own.
	t.Run("a restart with only --data-dir comes back as the same node", func(t *testing.T) {
		again := restart(t, dir)
		if again.Name != "Alice" || again.ShortID != alice.ShortID || again.Port != alice.Port {
			t.Errorf("restarted as %s (%s) on port %d, want Alice (%s) on port %d",
				again.Name, again.ShortID, again.Port, alice.ShortID, alice.Port)
		}
		again.Quit()
	})
}

func TestBadCommandLinesAreRefusedWithAClearMessage(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(file, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		code     int      // exact exit code; -1 for any failure
		contains []string // in stderr
		oneLine  bool     // stderr is a single line
	}{
		{name: "an unknown flag prints the usage", args: []string{"--no-such-flag"}, code: 2,
			contains: []string{"--no-such-flag", "Usage:"}},
		{name: "a data directory that is a file is named", args: []string{"--uname", "Alice", "--data-dir", file}, code: 1,
			contains: []string{file}},
		{name: "a name over 32 characters", args: []string{"--uname", strings.Repeat("n", 33), "--data-dir", "DIR"}, code: -1,
			contains: []string{"--uname", "32"}, oneLine: true},
		{name: "a name with a control character", args: []string{"--uname", "Al\x01ice", "--data-dir", "DIR"}, code: -1,
			contains: []string{"--uname", "control"}, oneLine: true},
		{name: "a first start without --uname", args: []string{"--data-dir", "DIR"}, code: 2,
			contains: []string{"--uname"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := slices.Clone(tt.args)
			for i, a := range args {
				if a == "DIR" {
					args[i] = newDataDir(t)
				}
			}
			res := p2pchat.Run(t, args...)
			if tt.code >= 0 && res.Code != tt.code || tt.code < 0 && res.Code == 0 {
				t.Errorf("exit code %d, want %d (-1: any failure)\nstderr:\n%s", res.Code, tt.code, res.Stderr)
			}
			for _, s := range tt.contains {
				if !strings.Contains(res.Stderr, s) {
					t.Errorf("stderr does not mention %q:\n%s", s, res.Stderr)
				}
			}
			if tt.oneLine && len(res.StderrLines()) != 1 {
				t.Errorf("stderr has %d lines, want one:\n%s", len(res.StderrLines()), res.Stderr)
			}
			if res.Stdout != "" {
				t.Errorf("stdout is not empty:\n%s", res.Stdout)
			}
		})
	}
}

func TestAnOverlongInputLineIsRefusedAndNotStored(t *testing.T) {
	t.Parallel()
	alice := startNode(t, "Alice")
	longest := strings.Repeat("x", 4096)
	alice.Send("before")
	alice.WaitLine("<Alice> before")
	alice.Send(longest)
	alice.WaitLine("<Alice> " + longest)

	from := alice.Len()
	alice.Send(strings.Repeat("y", 4097))
	alice.Send("after")
	_, after := alice.WaitLineAfter(from, "<Alice> after")
	var refusals int
	for _, l := range alice.Lines()[from:] {
		if strings.Contains(l, "yyyy") {
			t.Errorf("the overlong line was echoed: %.60q", l)
		}
		if strings.HasPrefix(l, "*** ") {
			refusals++
		}
	}
	if refusals != 1 {
		t.Errorf("%d system lines between the overlong line and %q, want one refusal", refusals, after)
	}
	alice.Quit()

	want := []string{"<Alice> before", "<Alice> " + longest, "<Alice> after"}
	if got := historyTexts(t, alice.DataDir); !slices.Equal(got, want) {
		t.Errorf("history has %d lines, want %d: before, 4096 x's, after", len(got), len(want))
	}
}

func TestASecondNodeOnTheSameDirectoryExitsAtOnce(t *testing.T) {
	t.Parallel()
	alice := startNode(t, "Alice")
	res := p2pchat.Run(t, "--data-dir", alice.DataDir)
	if res.Code != 1 {
		t.Errorf("second node exited %d, want 1\nstderr:\n%s", res.Code, res.Stderr)
	}
	if res.Duration > e2e.Scaled(2*time.Second) {
		t.Errorf("second node took %v to give up, want under 2s", res.Duration)
	}
	if !strings.Contains(res.Stderr, alice.DataDir) {
		t.Errorf("message does not name %s:\n%s", alice.DataDir, res.Stderr)
	}
	alice.Send("still here")
	alice.WaitLine("<Alice> still here")
	alice.Quit()
}

func TestReadingCommandsWhileANodeRunsAreAnsweredByItPromptly(t *testing.T) {
	t.Parallel()
	alice := startNode(t, "Alice")
	want := []string{"<Alice> one", "<Alice> two", "<Alice> three"}
	for _, l := range want {
		alice.Send(strings.TrimPrefix(l, "<Alice> "))
		alice.WaitLine(l)
	}
	// read runs a reading command on Alice's directory, which must not
	// keep the user waiting.
	read := func(t *testing.T, args ...string) e2e.Result {
		t.Helper()
		res := p2pchat.Run(t, append(args, "--data-dir", alice.DataDir)...)
		if res.Duration > e2e.Scaled(2*time.Second) {
			t.Errorf("%v took %v while the node runs, want under 2s", args, res.Duration)
		}
		return res
	}

	t.Run("history", func(t *testing.T) {
		if got := parseHistory(t, read(t, "history")); !slices.Equal(got, want) {
			t.Errorf("history while running: %q, want %q", got, want)
		}
		if got := parseHistory(t, read(t, "history", "-n", "1")); !slices.Equal(got, want[2:]) {
			t.Errorf("history -n 1 while running: %q, want %q", got, want[2:])
		}
	})
	t.Run("events", func(t *testing.T) {
		var chats int
		for _, e := range parseJSONLines(t, read(t, "events", "--json"), "events") {
			if e["type"] == "CHAT" {
				chats++
			}
		}
		if chats != len(want) {
			t.Errorf("events --json while running shows %d CHAT events, want %d", chats, len(want))
		}
	})
	t.Run("peers", func(t *testing.T) {
		if res := read(t, "peers"); res.Code != 0 || res.Stdout != "" {
			t.Errorf("peers while running exited %d with %q (stderr %q), want 0 and no peers", res.Code, res.Stdout, res.Stderr)
		}
	})
	t.Run("verify", func(t *testing.T) {
		if res := read(t, "verify"); res.Code != 0 || !strings.HasPrefix(res.Stdout, "ok: 3 events") {
			t.Errorf("verify while running exited %d with %q (stderr %q), want 0 and \"ok: 3 events, ...\"", res.Code, res.Stdout, res.Stderr)
		}
	})
	alice.Quit()
}

func TestReadingCommandsExitAtOnceWhenTheRunningNodeDoesNotAnswer(t *testing.T) {
	t.Parallel()
	alice := startNode(t, "Alice")
	// Without its socket the running node cannot be asked; the lock
	// still keeps readers out of the database.
	if err := os.Remove(filepath.Join(alice.DataDir, control.SocketName)); err != nil {
		t.Fatalf("remove the control socket: %v", err)
	}
	for _, cmd := range []string{"history", "events", "peers", "verify"} {
		res := p2pchat.Run(t, cmd, "--data-dir", alice.DataDir)
		if res.Code != 1 || !strings.Contains(res.Stderr, "in use") {
			t.Errorf("%s exited %d with %q, want 1 and a message saying \"in use\"", cmd, res.Code, res.Stderr)
		}
		if res.Duration > e2e.Scaled(2*time.Second) {
			t.Errorf("%s took %v, want under 2s", cmd, res.Duration)
		}
	}
	alice.Send("still here")
	alice.WaitLine("<Alice> still here")
	alice.Quit()
}

func TestACorruptDatabaseIsNamedAndLeftAlone(t *testing.T) {
	t.Parallel()
	for _, cmd := range [][]string{{"--uname", "Alice"}, {"history"}, {"verify"}} {
		t.Run(cmd[0], func(t *testing.T) {
			t.Parallel()
			dir := newDataDir(t)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			db := filepath.Join(dir, "p2pchat.db")
			garbage := bytes.Repeat([]byte("this is not a bbolt file \x00\xff"), 4096)
			if err := os.WriteFile(db, garbage, 0o600); err != nil {
				t.Fatal(err)
			}
			res := p2pchat.Run(t, append(cmd, "--data-dir", dir)...)
			if res.Code != 1 {
				t.Errorf("exit code %d, want 1\nstderr:\n%s", res.Code, res.Stderr)
			}
			if !strings.Contains(res.Stderr, db) {
				t.Errorf("message does not name %s:\n%s", db, res.Stderr)
			}
			after, err := os.ReadFile(db)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, garbage) {
				t.Errorf("the corrupt file was changed (%d bytes, was %d)", len(after), len(garbage))
			}
		})
	}
}
