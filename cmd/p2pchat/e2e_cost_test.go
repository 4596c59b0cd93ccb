package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/internal/e2e"
	"github.com/p2pchat/p2pchat/peering"
	"github.com/p2pchat/p2pchat/peering/wire"
)

// costRSSBound is the victim's resident memory bound under the attacks
// below: a node at rest holds about 12 MiB, after them about 17 MiB.
const costRSSBound = 64 << 20

// costRSS returns the resident set size of process pid, from /proc.
func costRSS(t *testing.T, pid int) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return kib << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// costAttacker connects to addr as a fresh identity, sends JOIN and
// returns the connection and the key, whose lines it can sign.
func costAttacker(t *testing.T, addr string) (*tls.Conn, ed25519.PrivateKey) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tc, id := hostileTLSAs(t, addr, key)
	_ = tc.SetDeadline(time.Now().Add(e2e.Patience))
	if _, err := tc.Write(hostileFrame(t, wire.FrameJoin, wire.JoinMsg{Version: wire.ProtocolVersion, ID: id, Name: "Mallory", Port: 9})); err != nil {
		t.Fatal(err)
	}
	return tc, key
}

// costLine is a CHAT frame of a line signed by key.
func costLine(t *testing.T, key ed25519.PrivateKey, seq uint64, text string) []byte {
	t.Helper()
	c := eventlog.Chat{OriginSeq: seq, OriginTime: time.Now(), Name: "Mallory", Text: text}
	c.Sign(key)
	return hostileFrame(t, wire.FrameChat, wire.ChatFromEvent(c))
}

func TestARealNodeUnderFreshAuthorsAndPaddedLinesStaysSmallAndChatting(t *testing.T) {
	t.Parallel()
	alice, bob := startPair(t)
	t.Logf("Alice's RSS at rest: %.1f MiB", float64(costRSS(t, alice.PID()))/(1<<20))

	// 3000 lines of 3000 fresh authors on one connection: the first
	// thousand pass, then the new-author budget holds the reader back
	// past the flood grace and the peer is dropped. A batch that would
	// wait just under the grace is waited for, so the drop can come a
	// whole grace after the burst is spent.
	tc, _ := costAttacker(t, alice.Addr())
	go func() { _, _ = io.Copy(io.Discard, tc) }()
	for i := range 3000 {
		_, author, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tc.Write(costLine(t, author, 1, fmt.Sprintf("fresh author %d", i))); err != nil {
			break
		}
	}
	if err := hostileClosed(tc, peering.DefaultConfig().FloodGrace+e2e.Patience); err != nil {
		t.Errorf("the fresh-author flood: %v", err)
	}
	alice.WaitStderr("new-author flood")

	// Five signed lines padded with an unsigned field of 60 KB: the first
	// is a violation.
	tc2, key := costAttacker(t, alice.Addr())
	for i := range 5 {
		line := strings.TrimSuffix(string(costLine(t, key, uint64(i+1), fmt.Sprintf("padded %d", i))), "}\n")
		if _, err := io.WriteString(tc2, line+`,"pad":"`+strings.Repeat("x", 60000)+"\"}\n"); err != nil {
			break
		}
	}
	if err := hostileClosed(tc2, e2e.Patience); err != nil {
		t.Errorf("the padded lines: %v", err)
	}

	rss := costRSS(t, alice.PID())
	t.Logf("Alice's RSS after the attacks: %.1f MiB", float64(rss)/(1<<20))
	if rss > costRSSBound {
		t.Errorf("Alice's RSS is %d MiB, bound %d MiB", rss>>20, costRSSBound>>20)
	}
	bob.Send("still here")
	e2e.WaitFor(t, e2e.Scaled(2*time.Second), func() bool { return alice.CountLines(chatLine("Bob", "still here")) > 0 }, "Alice shows Bob's line")
	alice.Send("so am I")
	e2e.WaitFor(t, e2e.Scaled(2*time.Second), func() bool { return bob.CountLines(chatLine("Alice", "so am I")) > 0 }, "Bob shows Alice's line")
	if alice.CountLines("padded ") > 0 || bob.CountLines("padded ") > 0 {
		t.Error("a padded line was shown")
	}
	for _, pair := range [][2]*e2e.Node{{alice, bob}, {bob, alice}} {
		n, honest := pair[0], pair[1]
		n.Quit()
		for _, line := range strings.Split(n.Stderr(), "\n") {
			if strings.Contains(line, "penalized peer") && strings.Contains(line, honest.ShortID) {
				t.Errorf("%s penalized %s: %s", n.Name, honest.Name, line)
			}
		}
		if res := p2pchat.Run(t, "verify", "--data-dir", n.DataDir); res.Code != 0 {
			t.Errorf("verify on %s exited %d:\n%s%s", n.Name, res.Code, res.Stdout, res.Stderr)
		}
	}
}
