// Package e2e runs the real p2pchat binary as separate processes, for
// end-to-end tests in any package of the module.
//
// A test package builds the binary once in its TestMain with Build and
// then starts nodes with Binary.Start (a long-running node with a stdin
// pipe, its stdout collected line by line and its stderr kept in a file)
// or runs one-shot commands with Binary.Run. Every process a test starts
// is killed in t.Cleanup if it is still alive, and on failure the test
// log shows each node's stdout and stderr.
//
// Nothing here sleeps to wait for something: waits poll a condition or
// watch the collected output until a deadline (Patience).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Patience bounds every wait of the harness. It is far above what a
// healthy node needs, so that a slow machine does not make the tests
// flaky; a broken node costs this much before its test fails.
const Patience = 20 * time.Second

// MainPackage is the import path of the p2pchat command.
const MainPackage = "github.com/p2pchat/p2pchat/cmd/p2pchat"

// RaceEnv names the environment variable that, set to 1, builds the
// binary with the race detector: slower nodes, but data races in the
// product fail the run.
const RaceEnv = "P2PCHAT_E2E_RACE"

// Binary is the path of a built p2pchat executable.
type Binary string

// Scaled is d for the ordinary binary and three times d for one built
// with the race detector, which starts and runs several times slower:
// time limits of the product are checked with the ordinary build, and the
// race build is there to find data races, not to time them.
func Scaled(d time.Duration) time.Duration {
	if os.Getenv(RaceEnv) == "1" {
		return 3 * d
	}
	return d
}

// Build compiles the p2pchat command into dir and returns its path. It is
// meant for TestMain, before any test runs.
func Build(dir string) (Binary, error) {
	bin := filepath.Join(dir, "p2pchat")
	args := []string{"build", "-o", bin}
	if os.Getenv(RaceEnv) == "1" {
		args = append(args, "-race")
	}
	args = append(args, MainPackage)
	cmd := exec.Command("go", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return Binary(bin), nil
}

// Result is the outcome of a one-shot command.
type Result struct {
	Code     int
	Stdout   string
	Stderr   string
	Duration time.Duration
}

// Lines returns the non-empty lines of the command's stdout.
func (r Result) Lines() []string { return splitLines(r.Stdout) }

// StderrLines returns the non-empty lines of the command's stderr.
func (r Result) StderrLines() []string { return splitLines(r.Stderr) }

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Run runs the binary with args and empty stdin until it exits, at most
// Patience, and returns what it did. A command that does not exit in time
// is killed and fails the test.
func (b Binary) Run(t testing.TB, args ...string) Result {
	t.Helper()
	return b.RunEnv(t, nil, args...)
}

// RunEnv is Run with extra environment variables (KEY=value), which may
// be P2PCHAT_* settings.
func (b Binary) RunEnv(t testing.TB, extraEnv []string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	cmd := exec.CommandContext(ctx, string(b), args...)
	cmd.Env = append(env(), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := Result{Code: 0, Stdout: stdout.String(), Stderr: stderr.String(), Duration: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("p2pchat %s did not exit within %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), Patience, res.Stdout, res.Stderr)
	case errors.As(err, &exitErr):
		res.Code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run p2pchat %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// env is the environment of every process the harness starts: the test's
// own, without P2PCHAT_* settings that would change what the flags say,
// and with LAN discovery off, so that test nodes neither multicast on the
// machine's network nor find the nodes of other tests. A test of LAN
// discovery turns it on inside its own network namespaces
// (env -u P2PCHAT_NO_MDNS).
func env() []string { return Env() }

// Env is the environment the harness gives the processes it starts, for a
// test that starts one by other means (a pty, a benchmark).
func Env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "P2PCHAT_") {
			out = append(out, kv)
		}
	}
	return append(out, "P2PCHAT_NO_MDNS=true")
}

// Node is a running p2pchat process in plain REPL mode.
type Node struct {
	t      testing.TB
	args   []string
	cmd    *exec.Cmd
	stdin  *os.File
	stderr string // path of the file that receives its stderr

	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced whenever lines grows or the process exits
	exited  bool
	code    int
	done    chan struct{} // closed once the process has exited and its stdout is drained

	marks int // sequence of the markers Users sends

	// Set by WaitListening from the node's "listening on" line.
	Name    string
	ShortID string
	Port    int
	DataDir string
}

// Start starts the binary with args, its stdin a pipe, its stdout
// collected line by line, its stderr in a file in a temporary directory.
// The process is killed when the test ends if it is still alive.
func (b Binary) Start(t testing.TB, args ...string) *Node {
	t.Helper()
	return StartIn(t, "", nil, string(b), args...)
}

// StartIn starts program with args as Start does, in directory dir (""
// for the test's own) and with extra environment variables: for a node
// started some other way than from the built binary, such as go run.
func StartIn(t testing.TB, dir string, extraEnv []string, program string, args ...string) *Node {
	t.Helper()
	stderr, err := os.CreateTemp(t.TempDir(), "stderr-*.log")
	if err != nil {
		t.Fatalf("create stderr file: %v", err)
	}
	defer stderr.Close() // the child has its own copy
	cmd := exec.Command(program, args...)
	cmd.Dir = dir
	cmd.Env = append(env(), extraEnv...)
	cmd.Stderr = stderr
	// The stdin pipe is the harness's own, not exec's StdinPipe: Wait
	// closes that one when the process exits, which races with Quit.
	stdinR, stdin, err := os.Pipe()
	if err != nil {
		t.Fatalf("stdin pipe: %v", err)
	}
	cmd.Stdin = stdinR
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("stdout pipe: %v", err)
	}
	err = cmd.Start()
	stdinR.Close() // the child has its own copy
	if err != nil {
		stdin.Close()
		t.Fatalf("start p2pchat %s: %v", strings.Join(args, " "), err)
	}
	n := &Node{
		t:       t,
		args:    args,
		cmd:     cmd,
		stdin:   stdin,
		stderr:  stderr.Name(),
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	go n.collect(stdout)
	t.Cleanup(n.cleanup)
	return n
}

// StartListening starts a node and waits for its "listening on" line.
func (b Binary) StartListening(t testing.TB, args ...string) *Node {
	t.Helper()
	n := b.Start(t, args...)
	n.WaitListening()
	return n
}

// collect reads stdout until the process closes it, then reaps the
// process.
func (n *Node) collect(stdout io.Reader) {
	br := bufio.NewReader(stdout)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			n.mu.Lock()
			n.lines = append(n.lines, strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"))
			close(n.changed)
			n.changed = make(chan struct{})
			n.mu.Unlock()
		}
		if err != nil {
			break
		}
	}
	err := n.cmd.Wait()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		code = -1
	}
	n.mu.Lock()
	n.exited, n.code = true, code
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
	close(n.done)
}

func (n *Node) cleanup() {
	n.stdin.Close()
	select {
	case <-n.done:
	default:
		_ = n.cmd.Process.Kill()
		select {
		case <-n.done:
		case <-time.After(Patience):
			n.t.Errorf("p2pchat %s: still not reaped %v after kill", n.label(), Patience)
		}
	}
	if n.t.Failed() {
		n.dump()
	}
}

func (n *Node) label() string {
	if n.Name != "" {
		return fmt.Sprintf("%s (%s, port %d)", n.Name, n.ShortID, n.Port)
	}
	return strings.Join(n.args, " ")
}

// dump logs what the node printed, for a failed test.
func (n *Node) dump() {
	const maxLines, maxStderr = 300, 32 << 10
	lines := n.Lines()
	skipped := 0
	if len(lines) > maxLines {
		skipped, lines = len(lines)-maxLines, lines[len(lines)-maxLines:]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "=== node %s: p2pchat %s\n--- stdout", n.label(), strings.Join(n.args, " "))
	if skipped > 0 {
		fmt.Fprintf(&b, " (first %d lines left out)", skipped)
	}
	b.WriteString(":\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	stderr := n.Stderr()
	if len(stderr) > maxStderr {
		stderr = "(start left out)\n" + stderr[len(stderr)-maxStderr:]
	}
	fmt.Fprintf(&b, "--- stderr:\n%s", stderr)
	n.t.Log(b.String())
}

// listening matches the line a node prints once it listens:
// "*** Alice (0a1b2c3d) listening on [::]:40123, data in /some/dir".
var listening = regexp.MustCompile(`^\*\*\* (.+) \(([0-9a-f]{8})\) listening on (\S+), data in (.+)$`)

// WaitListening waits for the "listening on" line and records the node's
// name, short ID, port and data directory from it.
func (n *Node) WaitListening() {
	n.t.Helper()
	line := n.WaitLine(" listening on ")
	m := listening.FindStringSubmatch(line)
	if m == nil {
		n.t.Fatalf("listening line %q does not read \"*** NAME (SHORTID) listening on ADDR, data in DIR\"", line)
	}
	_, port, err := net.SplitHostPort(m[3])
	if err != nil {
		n.t.Fatalf("listening line %q: address: %v", line, err)
	}
	n.Port, err = strconv.Atoi(port)
	if err != nil || n.Port <= 0 {
		n.t.Fatalf("listening line %q: port %q", line, port)
	}
	n.Name, n.ShortID, n.DataDir = m[1], m[2], m[4]
}

// PID is the process ID of the node, for what /proc says of it.
func (n *Node) PID() int { return n.cmd.Process.Pid }

// Addr is where other nodes on this machine dial this one.
func (n *Node) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port)) }

// Send writes one line to the node's stdin.
func (n *Node) Send(line string) {
	n.t.Helper()
	if _, err := io.WriteString(n.stdin, line+"\n"); err != nil {
		n.t.Fatalf("send %.40q to %s: %v", line, n.label(), err)
	}
}

// CloseStdin ends the node's input, which a plain-mode node takes as
// /quit.
func (n *Node) CloseStdin() {
	n.t.Helper()
	if err := n.stdin.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		n.t.Fatalf("close stdin of %s: %v", n.label(), err)
	}
}

// Quit sends /quit, closes stdin and waits for the node to exit 0.
func (n *Node) Quit() {
	n.t.Helper()
	n.Send("/quit")
	n.CloseStdin()
	if code := n.Wait(); code != 0 {
		n.t.Fatalf("%s exited %d after /quit, want 0", n.label(), code)
	}
}

// Wait waits for the process to exit, at most Patience, and returns its
// exit code.
func (n *Node) Wait() int {
	n.t.Helper()
	select {
	case <-n.done:
	case <-time.After(Patience):
		n.t.Fatalf("%s did not exit within %v", n.label(), Patience)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.code
}

// Exited reports whether the process has exited.
func (n *Node) Exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// WaitExit waits at most d for the process to exit and reports whether
// it has; unlike Wait, running on is not a failure.
func (n *Node) WaitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-n.done:
		return true
	case <-t.C:
		return false
	}
}

// Lines returns a copy of the stdout lines so far.
func (n *Node) Lines() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.lines...)
}

// Len is the number of stdout lines so far; pass it to WaitLineAfter to
// wait for output that comes after this moment.
func (n *Node) Len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.lines)
}

// CountLines counts the stdout lines so far that contain substr.
func (n *Node) CountLines(substr string) int {
	c := 0
	for _, l := range n.Lines() {
		if strings.Contains(l, substr) {
			c++
		}
	}
	return c
}

// WaitLine waits for a stdout line (of all so far) containing substr and
// returns it.
func (n *Node) WaitLine(substr string) string {
	n.t.Helper()
	_, line := n.WaitLineAfter(0, substr)
	return line
}

// WaitLineAfter waits for a stdout line at index from or later that
// contains substr, and returns its index and text. It fails the test if
// the node exits or Patience passes first.
func (n *Node) WaitLineAfter(from int, substr string) (int, string) {
	n.t.Helper()
	deadline := time.NewTimer(Patience)
	defer deadline.Stop()
	for {
		n.mu.Lock()
		for i := from; i < len(n.lines); i++ {
			if strings.Contains(n.lines[i], substr) {
				line := n.lines[i]
				n.mu.Unlock()
				return i, line
			}
		}
		from = max(from, len(n.lines))
		exited, changed := n.exited, n.changed
		n.mu.Unlock()
		if exited {
			n.t.Fatalf("%s exited before printing a line with %q", n.label(), substr)
		}
		select {
		case <-changed:
		case <-deadline.C:
			n.t.Fatalf("%s printed no line with %q within %v", n.label(), substr, Patience)
		}
	}
}

// Stderr returns what the node wrote to stderr so far.
func (n *Node) Stderr() string {
	b, err := os.ReadFile(n.stderr)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", n.stderr, err)
	}
	return string(b)
}

// WaitStderr waits until the node's stderr contains substr.
func (n *Node) WaitStderr(substr string) {
	n.t.Helper()
	WaitFor(n.t, Patience, func() bool { return strings.Contains(n.Stderr(), substr) },
		fmt.Sprintf("%s to log %q", n.label(), substr))
}

// User is one line of /l.
type User struct {
	Name    string
	ShortID string
	Addr    string
}

// userLine matches a line of /l: name, short ID, address, since (with the
// date when not today).
var userLine = regexp.MustCompile(`^(.+?)\s+([0-9a-f]{8})  (\S*)  since (?:\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d$`)

// Command sends line and returns the stdout lines that follow it, up to
// the answer to an unknown command sent right after it: the REPL answers
// commands in order, so that answer marks the end of the command's
// output. Lines printed meanwhile for other reasons, such as chat or
// joins arriving, are returned too.
func (n *Node) Command(line string) []string {
	n.t.Helper()
	n.marks++
	mark := fmt.Sprintf("/e2e-end-of-output-%d", n.marks)
	from := n.Len()
	n.Send(line)
	n.Send(mark)
	end, _ := n.WaitLineAfter(from, "unknown command "+mark)
	return n.Lines()[from:end]
}

// Users sends /l and returns the users it lists; lines that are not user
// lines are skipped. nobody reports the line saying that no one else is
// connected.
func (n *Node) Users() (users []User, nobody bool) {
	n.t.Helper()
	for _, l := range n.Command("/l") {
		if m := userLine.FindStringSubmatch(l); m != nil {
			users = append(users, User{Name: m[1], ShortID: m[2], Addr: m[3]})
		}
		if strings.HasPrefix(l, "*** ") && strings.Contains(l, "no one else is connected") {
			nobody = true
		}
	}
	return users, nobody
}

// WaitUsers polls /l until it lists exactly the given peers (by short ID)
// and returns that listing.
func (n *Node) WaitUsers(peers ...*Node) []User {
	n.t.Helper()
	var last []User
	WaitFor(n.t, Patience, func() bool {
		last, _ = n.Users()
		if len(last) != len(peers) {
			return false
		}
		for _, p := range peers {
			if !slices.ContainsFunc(last, func(u User) bool { return u.ShortID == p.ShortID }) {
				return false
			}
		}
		return true
	}, fmt.Sprintf("%s to list exactly %s on /l", n.label(), names(peers)))
	return last
}

func names(nodes []*Node) string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.Name)
	}
	return strings.Join(s, " and ")
}

// WaitFor polls cond until it holds, failing the test with what (the
// thing waited for) if timeout passes first.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	const interval = 50 * time.Millisecond
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// FreePort returns a TCP port that was free a moment ago. Another process
// may take it before the caller binds it; use it only where a node must be
// told a port before it starts, such as two nodes that dial each other.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Kill ends the process with SIGKILL, as a crash or a power cut would,
// and waits until it is reaped and its stdout drained, so that Lines then
// holds everything it printed before it died.
func (n *Node) Kill() {
	n.t.Helper()
	if err := n.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		n.t.Fatalf("kill %s: %v", n.label(), err)
	}
	select {
	case <-n.done:
	case <-time.After(Patience):
		n.t.Fatalf("%s not reaped within %v of SIGKILL", n.label(), Patience)
	}
}

// Signal sends sig to the process, as a user or a service manager would.
func (n *Node) Signal(sig os.Signal) {
	n.t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		n.t.Fatalf("signal %v to %s: %v", sig, n.label(), err)
	}
}

// Paste writes lines to the node's stdin in a single write, as pasting
// them into a terminal would. It returns the write's error instead of
// failing the test, so it may run in a goroutine of its own, and a node
// killed meanwhile only breaks the pipe.
func (n *Node) Paste(lines []string) error {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(n.stdin, b.String())
	return err
}

// WaitCount waits until at least count stdout lines contain substr and
// returns how many do. It watches the output as it grows, so it returns
// as soon as the count is reached, which matters to a test that wants to
// act in the middle of a stream. It fails the test if the node exits or
// Patience passes first.
func (n *Node) WaitCount(substr string, count int) int {
	n.t.Helper()
	deadline := time.NewTimer(Patience)
	defer deadline.Stop()
	seen, from := 0, 0
	for {
		n.mu.Lock()
		for ; from < len(n.lines); from++ {
			if strings.Contains(n.lines[from], substr) {
				seen++
			}
		}
		exited, changed := n.exited, n.changed
		n.mu.Unlock()
		if seen >= count {
			return seen
		}
		if exited {
			n.t.Fatalf("%s exited after printing %d lines with %q, want %d", n.label(), seen, substr, count)
		}
		select {
		case <-changed:
		case <-deadline.C:
			n.t.Fatalf("%s printed %d lines with %q within %v, want %d", n.label(), seen, substr, Patience, count)
		}
	}
}
