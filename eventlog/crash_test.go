package eventlog_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
)

// The helper process appends to the log in the directory named by
// crashDirEnv until it is killed.
const (
	crashDirEnv        = "P2PCHAT_EVENTLOG_HELPER_DIR"
	crashIterationsEnv = "P2PCHAT_CRASH_ITERATIONS"
	crashSeedEnv       = "P2PCHAT_CRASH_SEED"
	// crashNoSyncEnv makes the helper skip fsync, to see the power-cut
	// test fail as it must then: P2PCHAT_CRASH_NOSYNC=1.
	crashNoSyncEnv = "P2PCHAT_CRASH_NOSYNC"
)

// crashRand returns the random source of a randomized crash test, seeded
// from $P2PCHAT_CRASH_SEED to replay a failure, and logs the seed.
func crashRand(t *testing.T) *rand.Rand { return seededRand(t, crashSeedEnv) }

// crashOrigins are the nodes whose lines the helper receives; it also
// writes lines of its own.
var crashOrigins = []string{"alice", "bob"}

// appender is a running helper process and the acknowledgements it has
// printed, one "ack ORIGIN SEQ" line per stored message.
type appender struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
	tail  []string // printed before the kill and not read by then
}

func startAppender(t *testing.T, dir string) *appender {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &appender{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		defer close(a.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			a.lines <- sc.Text()
		}
	}()
	t.Cleanup(a.kill)
	return a
}

// next returns the next line the helper printed, or fails the test if
// there is none within the deadline.
func (a *appender) next(t *testing.T, deadline time.Time) string {
	t.Helper()
	select {
	case line, ok := <-a.lines:
		if !ok {
			t.Fatalf("the helper process ended early")
		}
		return line
	case <-time.After(time.Until(deadline)):
		t.Fatalf("the helper process printed nothing before the deadline")
		return ""
	}
}

// kill ends the helper with SIGKILL. What it printed and nobody read is
// drained, so the reading goroutine reaches the end of the pipe and stops
// before Wait, which must come after the last read.
func (a *appender) kill() {
	a.cmd.Process.Signal(syscall.SIGKILL)
	for line := range a.lines {
		a.tail = append(a.tail, line)
	}
	<-a.done
	a.cmd.Wait()
}

// rest returns every line the ended helper printed that was not read yet.
func (a *appender) rest() []string {
	for line := range a.lines {
		a.tail = append(a.tail, line)
	}
	<-a.done
	out := a.tail
	a.tail = nil
	return out
}

// killAppenderAfter runs the helper on dir, kills it once it has
// acknowledged n appends (and whatever it said after them before it
// died), adds every acknowledged (origin, seq) to acked and returns how
// many acknowledgements there were.
func killAppenderAfter(t *testing.T, dir string, n int, acked map[eventlog.NodeID]map[uint64]bool) int {
	t.Helper()
	a := startAppender(t, dir)
	deadline := time.Now().Add(30 * time.Second)
	if line := a.next(t, deadline); line != "ready" {
		t.Fatalf("helper said %q, want ready", line)
	}
	var lines []string
	for range n {
		lines = append(lines, a.next(t, deadline))
	}
	a.kill()
	lines = append(lines, a.rest()...)
	for _, line := range lines {
		k := parseAck(t, line)
		if acked[k.origin] == nil {
			acked[k.origin] = map[uint64]bool{}
		}
		acked[k.origin][k.seq] = true
	}
	return len(lines)
}

type ack struct {
	origin eventlog.NodeID
	seq    uint64
}

func parseAck(t *testing.T, line string) ack {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ack" {
		t.Fatalf("helper printed %q, want an ack", line)
	}
	id, err := eventlog.ParseNodeID(f[1])
	if err != nil {
		t.Fatal(err)
	}
	seq, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return ack{id, seq}
}

func crashIterations(t *testing.T) int {
	if s := os.Getenv(crashIterationsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", crashIterationsEnv, s)
		}
		return n
	}
	return 10
}

func TestAcknowledgedAppendsSurviveAKill(t *testing.T) {
	dir := t.TempDir()
	rng := crashRand(t)
	acked := map[eventlog.NodeID]map[uint64]bool{}
	for iter := range crashIterations(t) {
		killedAfter := killAppenderAfter(t, dir, rng.IntN(300), acked)

		func() {
			st, err := store.Open(dir, store.Options{})
			if err != nil {
				t.Fatalf("iteration %d: reopen: %v", iter, err)
			}
			defer st.Close()
			l, err := eventlog.Open(st, eventlog.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			rep := assertClean(t, l)
			marks, err := l.Watermarks()
			if err != nil {
				t.Fatal(err)
			}
			for origin, seqs := range acked {
				events, err := l.ByOrigin(origin, 0, 1<<30)
				if err != nil {
					t.Fatal(err)
				}
				held := map[uint64]bool{}
				for _, e := range events {
					_, s := e.Body.(eventlog.Signed).OriginKey()
					held[s] = true
				}
				var top uint64
				for s := range seqs {
					if !held[s] {
						t.Errorf("iteration %d: acknowledged message %s/%d is not in the log", iter, origin.Short(), s)
					}
					top = max(top, s)
				}
				if marks[origin] < top {
					t.Errorf("iteration %d: watermark of %s is %d, below the acknowledged %d", iter, origin.Short(), marks[origin], top)
				}
			}
			t.Logf("iteration %d: killed after %d acks; the log holds %d events", iter, killedAfter, rep.Events)
		}()
	}
}

func TestOpenFailsWhileAnotherProcessAppends(t *testing.T) {
	dir := t.TempDir()
	a := startAppender(t, dir)
	if line := a.next(t, time.Now().Add(30*time.Second)); line != "ready" {
		t.Fatalf("helper said %q, want ready", line)
	}
	start := time.Now()
	_, err := store.Open(dir, store.Options{})
	if !errors.Is(err, store.ErrDirInUse) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Open = %v; want ErrDirInUse naming %s", err, dir)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Open took %v to fail, want at most 2s", elapsed)
	}
}

// TestHelperProcess is not a test: re-executed by the tests above, it
// appends to the log in $P2PCHAT_EVENTLOG_HELPER_DIR from several
// goroutines, printing each acknowledged message, until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of another test")
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	st, err := store.Open(dir, store.Options{NoSync: os.Getenv(crashNoSyncEnv) != ""})
	if err != nil {
		fail(err)
	}
	l, err := eventlog.Open(st, eventlog.Options{})
	if err != nil {
		fail(err)
	}
	marks, err := l.Watermarks()
	if err != nil {
		fail(err)
	}
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		// Unbuffered: each line is one write, done before the next append.
		if _, err := fmt.Fprintf(os.Stdout, format+"\n", args...); err != nil {
			fail(err)
		}
	}
	say("ready")
	ack := func(res []eventlog.Result) {
		for _, r := range res {
			origin, seq := r.Body.(eventlog.Signed).OriginKey()
			say("ack %s %d", origin, seq)
		}
	}
	for _, name := range crashOrigins {
		key := originKey(name)
		next := marks[idOf(key)] + 1
		go func() {
			for ; ; next += 2 {
				res, err := l.Append(context.Background(),
					signedChat(key, name, next, "relayed line"), signedChat(key, name, next+1, "and another"))
				if err != nil {
					fail(err)
				}
				ack(res)
			}
		}()
	}
	for range 3 {
		go func() {
			for {
				res, err := l.Append(context.Background(), eventlog.Chat{Name: "Me", Text: "a line of my own"})
				if err != nil {
					fail(err)
				}
				ack(res)
			}
		}()
	}
	select {} // until killed
}
