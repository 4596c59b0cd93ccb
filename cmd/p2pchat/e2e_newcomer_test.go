package main

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/internal/e2e"
	"github.com/p2pchat/p2pchat/store"
)

// What a newcomer meets first: the command line, names, and what the
// reading commands print.

func TestARestartWithTheCommandTypedLastTimeKeepsANick(t *testing.T) {
	t.Parallel()
	dir := newDataDir(t)
	first := []string{"--port", "0", "--uname", "Alice", "--data-dir", dir}
	alice := p2pchat.StartListening(t, first...)
	alice.Send("/nick Alicia")
	alice.WaitLine("*** you are now known as Alicia")
	alice.Quit()

	// The same command as the first start: the node stays Alicia.
	again := p2pchat.StartListening(t, first...)
	if again.Name != "Alicia" {
		t.Errorf("after /nick Alicia and a restart with --uname Alice the node is %q, want Alicia", again.Name)
	}
	again.WaitLine("--uname Alice names only a new node")
	again.Quit()
	if res := p2pchat.Run(t, "peers", "--data-dir", dir); res.Code != 0 {
		t.Fatalf("peers after the restart exited %d: %s", res.Code, res.Stderr)
	}
	// Once more without --uname: still Alicia, still the same node.
	third := restart(t, dir)
	if third.Name != "Alicia" || third.ShortID != alice.ShortID {
		t.Errorf("third start is %s (%s), want Alicia (%s)", third.Name, third.ShortID, alice.ShortID)
	}
	third.Quit()
}

func TestALookAlikeOfAKnownPeerIsShownWithItsShortID(t *testing.T) {
	t.Parallel()
	alice, bob := startPair(t)
	alice.Quit() // Bob still knows Alice from his peer table.

	// A Cyrillic А: another node that looks like Alice.
	fake := startNode(t, "\u0410lice", "--peer", bob.Addr())
	waitMesh(t, bob, fake)
	fake.Send("it is me, Alice")
	bob.WaitLine(chatLine("\u0410lice#"+fake.ShortID, "it is me, Alice"))
	fake.Quit()
	bob.Quit()
}

func TestANameWithAnInvisibleCharacterIsRefused(t *testing.T) {
	t.Parallel()
	res := p2pchat.Run(t, "--uname", "Alice\u200b", "--data-dir", newDataDir(t))
	if res.Code != 2 || !strings.Contains(res.Stderr, "invisible") {
		t.Errorf("--uname with a zero-width space: exit %d, stderr %q; want 2 and a message saying why", res.Code, res.Stderr)
	}
}

// hostileLog makes a stopped node's log hold what an older version could
// have stored from a peer: a name and a text with C1 and bidi controls.
func hostileLog(t *testing.T) string {
	t.Helper()
	dir := newDataDir(t)
	startNode := p2pchat.StartListening(t, "--port", "0", "--uname", "Carol", "--data-dir", dir)
	startNode.Quit()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := eventlog.IDFromKey(key.Public().(ed25519.PublicKey))
	chat := eventlog.Chat{OriginSeq: 1, OriginTime: time.Now(), Name: "Mal\u0085lory", Text: "pay \u202eevil\u009b31m"}
	chat.Sign(key)
	join := eventlog.Join{ID: id, Name: "Mal\u0085lory", Addrs: []string{"127.0.0.1:9"}, Version: 1}
	if _, err := log.Append(context.Background(), join, chat); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReadingCommandsNeverPrintControlCharactersPeersSent(t *testing.T) {
	t.Parallel()
	dir := hostileLog(t)
	for _, args := range [][]string{
		{"history"}, {"history", "--json"},
		{"peers"}, {"peers", "--json"},
		{"events"}, {"events", "--json"},
	} {
		res := p2pchat.Run(t, append(args, "--data-dir", dir)...)
		if res.Code != 0 {
			t.Fatalf("%v exited %d: %s", args, res.Code, res.Stderr)
		}
		if !strings.Contains(res.Stdout, "Mal") {
			t.Errorf("%v does not show Mallory at all:\n%s", args, res.Stdout)
		}
		if strings.ContainsAny(res.Stdout, "\u0085\u202e\u009b") {
			t.Errorf("%v printed a raw C1 or bidi control:\n%q", args, res.Stdout)
		}
	}
}

func TestTheCommandLineAnswersHelpAndVersion(t *testing.T) {
	t.Parallel()
	help := p2pchat.Run(t, "--help")
	if help.Code != 0 || !strings.Contains(help.Stdout, "Usage: p2pchat") || !strings.Contains(help.Stdout, "--version") {
		t.Errorf("--help: exit %d, stdout:\n%s", help.Code, help.Stdout)
	}
	runHelp := p2pchat.Run(t, "run", "--help")
	for _, flag := range []string{"--port", "--peer", "--headless", "--log-level", "--log-file", "--max-peers", "--replay"} {
		if !strings.Contains(runHelp.Stdout, flag) {
			t.Errorf("run --help does not mention %s", flag)
		}
	}
	version := p2pchat.Run(t, "version")
	flag := p2pchat.Run(t, "--version")
	if version.Code != 0 || flag.Code != 0 || !strings.HasPrefix(version.Stdout, "p2pchat ") || version.Stdout != flag.Stdout {
		t.Errorf("version: exit %d %q; --version: exit %d %q; want both 0 and the same line", version.Code, version.Stdout, flag.Code, flag.Stdout)
	}
}

func TestLogFlagsBelongToRunAndAreChecked(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"history", "--log-level", "bogus"},
		{"--log-level", "bogus", "--uname", "Alice"},
		{"run", "--log-level", "bogus", "--uname", "Alice"},
	} {
		res := p2pchat.Run(t, append(args, "--data-dir", newDataDir(t))...)
		if res.Code != 2 || !strings.Contains(res.Stderr, "--log-level") {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming --log-level", args, res.Code, res.Stderr)
		}
	}
}

func TestADataDirectoryWithATildeIsTheHomeDirectory(t *testing.T) {
	t.Parallel()
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip(err)
	}
	cwd := t.TempDir()
	name := "p2pchat-test-no-such-node-" + filepath.Base(cwd)
	res := p2pchat.Run(t, "verify", "--data-dir=~/"+name)
	if res.Code == 0 || !strings.Contains(res.Stderr, filepath.Join(home, name)) {
		t.Errorf("verify --data-dir=~/%s: exit %d, stderr %q; want a failure naming %s", name, res.Code, res.Stderr, filepath.Join(home, name))
	}
}

func TestEveryFlagWorksThroughItsEnvironmentVariable(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env  []string
		args []string
		want string // in stderr
	}{
		{[]string{"P2PCHAT_DATA_DIR=" + file, "P2PCHAT_UNAME=Alice"}, nil, file},
		{[]string{"P2PCHAT_UNAME=A#b"}, []string{"--data-dir", "DIR"}, "--uname"},
		{[]string{"P2PCHAT_PORT=70000"}, []string{"--uname", "A", "--data-dir", "DIR"}, "--port 70000"},
		{[]string{"P2PCHAT_PEER=no-port"}, []string{"--uname", "A", "--data-dir", "DIR"}, "--peer no-port"},
		{[]string{"P2PCHAT_LISTEN_HOST=256.0.0.1"}, []string{"--uname", "A", "--data-dir", "DIR"}, "256.0.0.1"},
		{[]string{"P2PCHAT_REPLAY=-1"}, []string{"--uname", "A", "--data-dir", "DIR"}, "--replay"},
		{[]string{"P2PCHAT_MAX_PEERS=0"}, []string{"--uname", "A", "--data-dir", "DIR"}, "--max-peers"},
		{[]string{"P2PCHAT_LOG_LEVEL=loud"}, []string{"--uname", "A", "--data-dir", "DIR"}, "--log-level"},
		{[]string{"P2PCHAT_LOG_FILE=" + filepath.Join(file, "log")}, []string{"--uname", "A", "--data-dir", "DIR"}, "log file"},
		{[]string{"P2PCHAT_NETWORK_KEY_FILE=" + filepath.Join(file, "key")}, []string{"--uname", "A", "--data-dir", "DIR"}, filepath.Join(file, "key")},
		{[]string{"P2PCHAT_HEADLESS=maybe"}, []string{"--uname", "A", "--data-dir", "DIR"}, "headless"},
		{[]string{"P2PCHAT_N=-1"}, []string{"history", "--data-dir", "DIR"}, "-n"},
		{[]string{"P2PCHAT_JSON=maybe"}, []string{"peers", "--data-dir", "DIR"}, "json"},
		{[]string{"P2PCHAT_SINCE=first"}, []string{"events", "--data-dir", "DIR"}, "since"},
	}
	for _, tt := range tests {
		args := append([]string(nil), tt.args...)
		for i, a := range args {
			if a == "DIR" {
				args[i] = newDataDir(t)
			}
		}
		res := p2pchat.RunEnv(t, tt.env, args...)
		if res.Code == 0 || !strings.Contains(res.Stderr, tt.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want a failure naming %q", tt.env, tt.args, res.Code, res.Stderr, tt.want)
		}
	}

	// And a whole node set up from the environment alone.
	dir := newDataDir(t)
	logFile := filepath.Join(t.TempDir(), "node.log")
	node := e2e.StartIn(t, "", []string{
		"P2PCHAT_UNAME=Envy", "P2PCHAT_DATA_DIR=" + dir, "P2PCHAT_PORT=0", "P2PCHAT_HEADLESS=true",
		"P2PCHAT_LOG_LEVEL=info", "P2PCHAT_LOG_FILE=" + logFile, "P2PCHAT_REPLAY=0", "P2PCHAT_MAX_PEERS=3",
	}, string(p2pchat))
	node.WaitListening()
	node.CloseStdin() // headless: the end of input is not the end of the node
	e2e.WaitFor(t, e2e.Patience, func() bool {
		b, _ := os.ReadFile(logFile)
		return strings.Contains(string(b), `"message":"listening"`)
	}, "the log file to say the node listens")
	node.Signal(syscall.SIGTERM)
	if code := node.Wait(); code != 0 {
		t.Errorf("headless node exited %d on SIGTERM, want 0", code)
	}
	if node.Name != "Envy" || node.DataDir != dir {
		t.Errorf("node from the environment is %s in %s, want Envy in %s", node.Name, node.DataDir, dir)
	}
}

func TestSIGINTAndSIGTERMShutANodeDownGracefully(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		for _, mode := range [][]string{{"--headless"}, nil} {
			dir := newDataDir(t)
			node := p2pchat.StartListening(t, append([]string{"--port", "0", "--uname", "Sig", "--data-dir", dir}, mode...)...)
			node.Send("said before " + sig.String())
			if mode == nil {
				node.WaitLine(chatLine("Sig", "said before "+sig.String()))
			}
			node.Signal(sig)
			if code := node.Wait(); code != 0 {
				t.Errorf("%v %v: exit %d, want 0\n%s", sig, mode, code, node.Stderr())
			}
			// The directory is free again, and the log whole.
			if res := p2pchat.Run(t, "verify", "--data-dir", dir); res.Code != 0 {
				t.Errorf("verify after %v: exit %d: %s", sig, res.Code, res.Stderr)
			}
		}
	}
}
