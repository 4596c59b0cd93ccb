package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/internal/e2e"
)

// Catch-up: a node that was away, or died, gets what was said meanwhile
// from any peer that has it, once each and in order.

// numberedLines returns count chat texts from name, unique to round and
// numbered so that they sort in the order they were said.
func numberedLines(name, round string, count int) []string {
	out := make([]string, count)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%s-%04d", strings.ToLower(name), round, i)
	}
	return out
}

// asChat turns texts from name into the chat lines they show as.
func asChat(name string, texts []string) []string {
	out := make([]string, len(texts))
	for i, text := range texts {
		out[i] = chatLine(name, text)
	}
	return out
}

// checkHistoryHasInOrder fails the test unless the history lines that
// contain marker are exactly want: every line once, in order.
func checkHistoryHasInOrder(t *testing.T, who string, history []string, marker string, want []string) {
	t.Helper()
	got := slices.DeleteFunc(slices.Clone(history), func(l string) bool { return !strings.Contains(l, marker) })
	if slices.Equal(got, want) {
		return
	}
	counts := map[string]int{}
	for _, l := range got {
		counts[l]++
	}
	var missing, doubled []string
	for _, l := range want {
		switch counts[l] {
		case 0:
			missing = append(missing, l)
		case 1:
		default:
			doubled = append(doubled, l)
		}
	}
	t.Errorf("%s's history has %d lines with %q, want %d once each in order; %d missing (first %q), %d more than once (first %q)",
		who, len(got), marker, len(want), len(missing), firstOf(missing), len(doubled), firstOf(doubled))
}

// firstOf is the first of s, or "" when s is empty, for messages.
func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// missedLine matches the line that heads a block of caught-up lines.
var missedLine = regexp.MustCompile(`^\*\*\* (\d+) missed messages? from (.+)$`)

// missedLines returns the lines n showed that head a block of caught-up
// lines.
func missedLines(n *e2e.Node) []string {
	return slices.DeleteFunc(n.Lines(), func(l string) bool { return !missedLine.MatchString(l) })
}

// missedCount adds up the caught-up lines n said it got from name.
func missedCount(n *e2e.Node, name string) int {
	sum := 0
	for _, l := range missedLines(n) {
		m := missedLine.FindStringSubmatch(l)
		if c, err := strconv.Atoi(m[1]); err == nil && m[2] == name {
			sum += c
		}
	}
	return sum
}

// checkShownAtMostOnce fails the test if n showed a line with marker
// more than once.
func checkShownAtMostOnce(t *testing.T, n *e2e.Node, marker string) {
	t.Helper()
	seen := map[string]bool{}
	for _, l := range n.Lines() {
		i := strings.Index(l, marker)
		if i < 0 {
			continue
		}
		text := l[i:]
		if seen[text] {
			t.Errorf("%s shows %q more than once", n.Name, text)
			return
		}
		seen[text] = true
	}
}

// checkVerifyClean fails the test unless `verify` on dir exits 0.
func checkVerifyClean(t *testing.T, who, dir string) {
	t.Helper()
	if res := p2pchat.Run(t, "verify", "--data-dir", dir); res.Code != 0 || !strings.HasPrefix(res.Stdout, "ok: ") {
		t.Errorf("verify on %s exited %d:\n%s%s", who, res.Code, res.Stdout, res.Stderr)
	}
}

func TestANodeBackFromAwayShowsWhatItMissedAndKeepsItOnceInOrder(t *testing.T) {
	t.Parallel()
	alice, bob, carol := startChain(t)
	carol.Quit()
	alice.WaitLine("*** Carol left")
	bob.WaitLine("*** Carol left")

	texts := numberedLines("Alice", "missed", 100)
	if err := alice.Paste(texts); err != nil {
		t.Fatalf("paste into Alice: %v", err)
	}
	want := asChat("Alice", texts)
	bob.WaitLine(want[len(want)-1])

	carol = restart(t, carol.DataDir)
	// Both Alice and Bob hold the lines and both answer Carol: wait for
	// whatever blocks she shows to add up, so that a split block fails
	// at once and names its parts.
	e2e.WaitFor(t, e2e.Patience, func() bool { return missedCount(carol, "Alice") >= 100 },
		"Carol's missed-messages lines about Alice to add up to 100")
	fence(t, "back", alice, bob, carol)
	if blocks := missedLines(carol); !slices.Equal(blocks, []string{"*** 100 missed messages from Alice"}) {
		t.Errorf("Carol shows %q about what she missed, want one line \"*** 100 missed messages from Alice\"", blocks)
	}
	checkHistoryHasInOrder(t, "Carol", historyTexts(t, carol.DataDir), "alice-missed-", want)
	carol.Quit()
	checkHistoryHasInOrder(t, "Carol (after she quit)", historyTexts(t, carol.DataDir), "alice-missed-", want)
	checkVerifyClean(t, "Carol", carol.DataDir)
	alice.Quit()
	bob.Quit()
}

func TestMissedLinesComeFromAnotherPeerWhenTheirAuthorIsGone(t *testing.T) {
	t.Parallel()
	alice, bob, carol := startChain(t)
	carol.Quit()
	alice.WaitLine("*** Carol left")

	texts := numberedLines("Alice", "gone", 20)
	if err := alice.Paste(texts); err != nil {
		t.Fatalf("paste into Alice: %v", err)
	}
	want := asChat("Alice", texts)
	bob.WaitLine(want[len(want)-1])
	alice.Quit()
	bob.WaitLine("*** Alice left")

	carol = restart(t, carol.DataDir)
	carol.WaitLine("*** 20 missed messages from Alice")
	for _, l := range want {
		carol.WaitLine(l)
	}
	if users, _ := carol.Users(); len(users) != 1 || users[0].ShortID != bob.ShortID {
		t.Errorf("Carol lists %v, want only Bob: the lines came from him", users)
	}
	checkHistoryHasInOrder(t, "Carol", historyTexts(t, carol.DataDir), "alice-gone-", want)
	carol.Quit()
	bob.Quit()
	checkVerifyClean(t, "Carol", carol.DataDir)
}

func TestAReceiverKilledMidStreamHasEveryLineOnceAfterARestart(t *testing.T) {
	t.Parallel()
	const total, killAfter = 3000, 200
	alice := startNode(t, "Alice")
	carol := startNode(t, "Carol", "--peer", alice.Addr())
	waitMesh(t, alice, carol)

	texts := numberedLines("Alice", "stream", total)
	want := asChat("Alice", texts)
	if err := alice.Paste(texts); err != nil {
		t.Fatalf("paste into Alice: %v", err)
	}
	carol.WaitCount("<Alice> alice-stream-", killAfter)
	carol.Kill()
	shown := carol.CountLines("<Alice> alice-stream-")
	t.Logf("Carol showed %d of %d lines before SIGKILL", shown, total)
	if shown == total {
		t.Logf("Carol had shown every line before the kill landed: the restart has nothing left to fetch")
	}
	alice.WaitLine(want[total-1])

	carol = restart(t, carol.DataDir)
	var history []string
	e2e.WaitFor(t, e2e.Patience, func() bool {
		history = historyTexts(t, carol.DataDir)
		n := 0
		for _, l := range history {
			if strings.Contains(l, "alice-stream-") {
				n++
			}
		}
		return n >= total
	}, fmt.Sprintf("Carol's history to hold %d lines of Alice", total))
	checkHistoryHasInOrder(t, "Carol", history, "alice-stream-", want)
	checkVerifyClean(t, "Carol (running)", carol.DataDir)
	checkShownAtMostOnce(t, carol, "alice-stream-")

	// Carol's log stays whole on: later lines arrive once, nothing is
	// fetched twice.
	alice.Send("after the storm")
	carol.WaitLine(chatLine("Alice", "after the storm"))
	carol.Quit()
	history = historyTexts(t, carol.DataDir)
	checkHistoryHasInOrder(t, "Carol (after she quit)", history, "alice-stream-", want)
	if c := countEqual(history, chatLine("Alice", "after the storm")); c != 1 {
		t.Errorf("Carol's history has Alice's later line %d times, want once", c)
	}
	checkVerifyClean(t, "Carol (stopped)", carol.DataDir)
	alice.Quit()
}
