package main

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/internal/e2e"
)

// The chat commands (/msg, /nick, /kick, /bans, /unban, /history, /peers,
// /connect, /me) as a person at the keyboard of a real node sees them.

// startPair starts Alice and Bob (--peer Alice) and waits until each lists
// the other.
func startPair(t *testing.T) (alice, bob *e2e.Node) {
	t.Helper()
	alice = startNode(t, "Alice")
	bob = startNode(t, "Bob", "--peer", alice.Addr())
	waitMesh(t, alice, bob)
	// Alice dials Bob back and tells him how she sees him: a line of its
	// own on Bob's screen, which must not land among a test's output.
	bob.WaitLine("*** peers see you at ")
	return alice, bob
}

// privateLine is how a private message from name with text reads.
func privateLine(name, text string) string { return "[private] <" + name + "> " + text }

// sentLine is how the sender of a private message to to shows it.
func sentLine(to, from, text string) string { return "[private to " + to + "] <" + from + "> " + text }

// deliveredLine is how the sender learns that to has the message.
func deliveredLine(to, text string) string { return "*** delivered to " + to + ": " + text }

// systemLines returns the lines of out that start with "*** ".
func systemLines(out []string) []string {
	var sys []string
	for _, l := range out {
		if strings.HasPrefix(l, "*** ") {
			sys = append(sys, l)
		}
	}
	return sys
}

// eventTypes counts the events of each type in the log of dir (read from
// the node if it runs there).
func eventTypes(t *testing.T, dir string) map[string]int {
	t.Helper()
	types := map[string]int{}
	for _, e := range jsonLines(t, "events", "--data-dir", dir, "--json") {
		types[fmt.Sprint(e["type"])]++
	}
	return types
}

// textFence is fence for nodes whose names clash, which other nodes show
// as name#shortid: each node sends one line, and every node waits for the
// texts whatever name they come under.
func textFence(t *testing.T, round string, nodes ...*e2e.Node) {
	t.Helper()
	var texts []string
	for _, n := range nodes {
		text := fmt.Sprintf("%s-fence-%s", round, n.ShortID)
		n.Send(text)
		texts = append(texts, "> "+text)
	}
	for _, n := range nodes {
		for _, text := range texts {
			n.WaitLine(text)
		}
	}
}

// stderrCount counts the lines of n's stderr that contain every one of
// substrs.
func stderrCount(n *e2e.Node, substrs ...string) int {
	c := 0
	for _, l := range strings.Split(n.Stderr(), "\n") {
		if !slices.ContainsFunc(substrs, func(s string) bool { return !strings.Contains(l, s) }) {
			c++
		}
	}
	return c
}

// listsName reports whether users has someone called name.
func listsName(users []e2e.User, name string) bool {
	return slices.ContainsFunc(users, func(u e2e.User) bool { return u.Name == name })
}

func TestAPrivateMessageReachesOnlyItsRecipientAndWaitsForOneWhoIsAway(t *testing.T) {
	t.Parallel()
	alice, bob, carol := startChain(t)

	const secret = "just between the two of us"
	alice.Send("/msg Bob " + secret)
	alice.WaitLine(sentLine("Bob", "Alice", secret))
	bob.WaitLine(privateLine("Alice", secret))
	alice.WaitLine(deliveredLine("Bob", secret))
	// Carol is connected to both: had anything of the message come her
	// way, it would have arrived before the lines of this round.
	fence(t, "private", alice, bob, carol)
	if c := carol.CountLines(secret); c != 0 {
		t.Errorf("Carol shows the private message to Bob %d times, want never", c)
	}
	if c := bob.CountLines(privateLine("Alice", secret)); c != 1 {
		t.Errorf("Bob shows the private message %d times, want once", c)
	}
	if db := readDatabase(t, carol.DataDir); bytes.Contains(db, []byte(secret)) {
		t.Error("Carol's database file holds the text of the private message to Bob")
	}

	bob.Quit()
	alice.WaitLine("*** Bob left")
	const later = "for when you are back"
	alice.Send("/msg Bob " + later)
	alice.WaitLine(sentLine("Bob", "Alice", later))

	// Without replay, whatever Bob shows of Alice's messages arrived anew.
	bob = restart(t, bob.DataDir, "--replay", "0")
	bob.WaitLine(privateLine("Alice", later))
	alice.WaitLine(deliveredLine("Bob", later))
	fence(t, "back", alice, bob, carol)
	if c := bob.CountLines(privateLine("Alice", later)); c != 1 {
		t.Errorf("Bob back shows the waiting message %d times, want once", c)
	}
	if c := bob.CountLines(secret); c != 0 {
		t.Errorf("Bob back shows the message he had already received %d times, want never again", c)
	}
	if c := carol.CountLines(later); c != 0 {
		t.Errorf("Carol shows the private message to Bob %d times, want never", c)
	}
	for _, n := range []*e2e.Node{alice, bob, carol} {
		n.Quit()
	}
}

func TestPrivateMessagesTypedWhileTheRecipientComesBackAreEachDeliveredOnce(t *testing.T) {
	t.Parallel()
	const total = 300
	alice, bob := startPair(t)
	bob.Quit()
	alice.WaitLine("*** Bob left")

	// Alice keeps typing to Bob while he is away and while he comes back:
	// the first messages wait for him, the later ones go straight to him.
	var texts, lines []string
	for i := range total {
		text := fmt.Sprintf("private-%04d", i)
		texts = append(texts, text)
		lines = append(lines, "/msg Bob "+text)
	}
	pasted := make(chan error, 1)
	go func() { pasted <- alice.Paste(lines) }()
	away := alice.WaitCount(sentLine("Bob", "Alice", "private-"), 10)
	bob = restart(t, bob.DataDir)
	if err := <-pasted; err != nil {
		t.Fatalf("paste into Alice: %v", err)
	}
	alice.WaitCount(sentLine("Bob", "Alice", "private-"), total)
	alice.WaitCount(deliveredLine("Bob", "private-"), total)
	// Everything Alice sent Bob before this round has reached him.
	fence(t, "private", alice, bob)

	var lost, doubled []string
	for _, text := range texts {
		switch bob.CountLines(privateLine("Alice", text)) {
		case 0:
			lost = append(lost, text)
		case 1:
		default:
			doubled = append(doubled, text)
		}
	}
	if len(lost) > 0 || len(doubled) > 0 {
		t.Errorf("of %d private messages (%d typed while Bob was away), Bob shows %d never (first %q) and %d more than once (first %q); Alice counts them all delivered",
			total, away, len(lost), firstOf(lost), len(doubled), firstOf(doubled))
	}
	alice.Quit()
	bob.Quit()
}

func TestARenameShowsUnderTheNewNameAndHistoryKeepsTheOld(t *testing.T) {
	t.Parallel()
	alice, bob := startPair(t)
	alice.Send("said as Alice")
	bob.WaitLine(chatLine("Alice", "said as Alice"))

	alice.Send("/nick Alicia")
	alice.WaitLine("*** you are now known as Alicia")
	bob.WaitLine("*** Alice is now Alicia")
	users := bob.WaitUsers(alice)
	if !listsName(users, "Alicia") || listsName(users, "Alice") {
		t.Errorf("Bob's /l lists %v, want Alicia and no Alice", users)
	}
	alice.Send("said as Alicia")
	bob.WaitLine(chatLine("Alicia", "said as Alicia"))
	alice.WaitLine(chatLine("Alicia", "said as Alicia"))

	want := []string{chatLine("Alice", "said as Alice"), chatLine("Alicia", "said as Alicia")}
	if got := historyTexts(t, bob.DataDir); !slices.Equal(got, want) {
		t.Errorf("Bob's history while he runs: %q, want %q", got, want)
	}
	bob.Quit()
	if got := historyTexts(t, bob.DataDir); !slices.Equal(got, want) {
		t.Errorf("Bob's history after he quit: %q, want %q", got, want)
	}
	alice.Quit()
	if got := historyTexts(t, alice.DataDir); !slices.Equal(got, want) {
		t.Errorf("Alice's history: %q, want %q", got, want)
	}
}

func TestAKickedPeerStaysOutAcrossARestartUntilUnbanned(t *testing.T) {
	t.Parallel()
	alice, bob, carol := startChain(t)

	alice.Send("/kick Carol")
	alice.WaitLine("*** Carol kicked")
	alice.WaitUsers(bob)

	// Carol's lines still reach Bob, but not Alice, neither directly nor
	// relayed by Bob.
	carol.Send("carol while kicked")
	bob.WaitLine(chatLine("Carol", "carol while kicked"))
	fence(t, "kicked", alice, bob)
	if c := alice.CountLines("carol while kicked"); c != 0 {
		t.Errorf("Alice shows a line of Carol, whom she kicked, %d times", c)
	}
	bans := alice.Command("/bans")
	if !slices.ContainsFunc(bans, func(l string) bool { return strings.Contains(l, "Carol") && strings.Contains(l, carol.ShortID) }) {
		t.Errorf("Alice's /bans does not list Carol (%s): %q", carol.ShortID, bans)
	}

	alice.Quit()
	bobFrom := bob.Len()
	caughtUp := func() int { return stderrCount(bob, "caught peer up", `"peer":"`+alice.ShortID+`"`) }
	before := caughtUp()
	alice = restart(t, alice.DataDir)
	// Settled: Alice is back with Bob, and Bob has sent her what she
	// lacks, Carol's line among it, and they have exchanged lines since.
	bob.WaitLineAfter(bobFrom, "*** Alice joined")
	alice.WaitUsers(bob)
	e2e.WaitFor(t, e2e.Patience, func() bool { return caughtUp() > before }, "Bob to catch Alice up after her restart")
	fence(t, "restarted", alice, bob)
	carol.Send("carol after the restart")
	bob.WaitLine(chatLine("Carol", "carol after the restart"))
	fence(t, "restarted-2", alice, bob)
	if users, _ := alice.Users(); listsName(users, "Carol") {
		t.Errorf("Alice restarted lists Carol, whom she kicked: %v", users)
	}
	for _, text := range []string{"carol while kicked", "carol after the restart"} {
		if c := alice.CountLines(text); c != 0 {
			t.Errorf("Alice restarted shows Carol's %q %d times, want never", text, c)
		}
	}
	if bans := alice.Command("/bans"); !slices.ContainsFunc(bans, func(l string) bool { return strings.Contains(l, carol.ShortID) }) {
		t.Errorf("Alice restarted: /bans does not list Carol (%s): %q", carol.ShortID, bans)
	}

	alice.Send("/unban Carol")
	alice.WaitLine("*** Carol is no longer banned")
	alice.WaitUsers(bob, carol)
	carol.Send("carol welcome back")
	alice.WaitLine(chatLine("Carol", "carol welcome back"))
	if bans := alice.Command("/bans"); slices.ContainsFunc(bans, func(l string) bool { return strings.Contains(l, carol.ShortID) }) {
		t.Errorf("Alice still lists Carol on /bans after /unban: %q", bans)
	}
	for _, n := range []*e2e.Node{alice, bob, carol} {
		n.Quit()
	}
	if res := p2pchat.Run(t, "verify", "--data-dir", alice.DataDir); res.Code != 0 {
		t.Errorf("verify on Alice exited %d:\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}

func TestBadCommandsAreRefusedWithASystemLineAndSendNothing(t *testing.T) {
	t.Parallel()
	alice, bob := startPair(t)
	tests := []struct {
		name, line, says string
	}{
		{"a private message without text", "/msg Bob", "usage: /msg NAME text"},
		{"a name of 33 characters", "/nick " + strings.Repeat("n", 33), "32"},
		{"a kick of oneself", "/kick Alice", "yourself"},
		{"a kick of a name no one has", "/kick Nobody", "Nobody"},
		{"a private message to a name no one has", "/msg Nobody hello", "Nobody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bobFrom := bob.Len()
			out := alice.Command(tt.line)
			sys := systemLines(out)
			if len(sys) != 1 || !strings.Contains(sys[0], tt.says) {
				t.Errorf("%q printed %q, want one *** line mentioning %q", tt.line, out, tt.says)
			}
			if len(sys) != len(out) {
				t.Errorf("%q printed more than its refusal: %q", tt.line, out)
			}
			// Anything sent for the command would reach Bob before a line
			// typed after it.
			text := "after " + tt.name
			alice.Send(text)
			_, got := bob.WaitLineAfter(bobFrom, chatLine("Alice", text))
			if extra := slices.DeleteFunc(bob.Lines()[bobFrom:], func(l string) bool { return l == got }); len(extra) > 0 {
				t.Errorf("Bob printed more than Alice's next line after %q: %q", tt.line, extra)
			}
			// Alice's own echo of the line comes on its own time: wait
			// for it, or the next command's output would include it.
			alice.WaitLine(chatLine("Alice", text))
		})
	}
	if users := bob.WaitUsers(alice); !listsName(users, "Alice") {
		t.Errorf("Bob lists %v after the refused commands, want Alice under her name", users)
	}
	if bans := alice.Command("/bans"); !slices.Equal(bans, []string{"*** no one is banned"}) {
		t.Errorf("Alice's /bans after the refused commands: %q, want no one banned", bans)
	}
	alice.Quit()
	bob.Quit()
	if c := eventTypes(t, bob.DataDir)["PRIVATE"]; c != 0 {
		t.Errorf("Bob's log holds %d PRIVATE events, want none", c)
	}
}

func TestTwoNodesSharingANameAreToldApartByShortID(t *testing.T) {
	t.Parallel()
	pat := startNode(t, "Pat")
	sam1 := startNode(t, "Sam", "--peer", pat.Addr())
	sam2 := startNode(t, "Sam", "--peer", pat.Addr())
	waitMesh(t, pat, sam1, sam2)

	for _, s := range []*e2e.Node{sam1, sam2} {
		text := "I am Sam " + s.ShortID
		s.Send(text)
		pat.WaitLine(chatLine("Sam#"+s.ShortID, text))
	}

	out := pat.Command("/msg Sam hi")
	sys := systemLines(out)
	if len(sys) != 1 || !strings.Contains(sys[0], "ambiguous") ||
		!strings.Contains(sys[0], "Sam#"+sam1.ShortID) || !strings.Contains(sys[0], "Sam#"+sam2.ShortID) {
		t.Errorf("/msg Sam printed %q, want one *** line saying Sam is ambiguous and naming Sam#%s and Sam#%s",
			out, sam1.ShortID, sam2.ShortID)
	}
	if c := pat.CountLines("[private]"); c != 0 {
		t.Errorf("Pat shows %d private lines after the refused /msg, want none", c)
	}

	pat.Send("/msg Sam#" + sam1.ShortID + " hi you")
	sam1.WaitLine(privateLine("Pat", "hi you"))
	pat.WaitLine(sentLine("Sam#"+sam1.ShortID, "Pat", "hi you"))
	textFence(t, "names", pat, sam1, sam2)
	if c := sam2.CountLines("hi you"); c != 0 {
		t.Errorf("the other Sam shows the private message %d times, want never", c)
	}
	for _, n := range []*e2e.Node{pat, sam1, sam2} {
		n.Quit()
	}
}

func TestHistoryPeersConnectAndMeEachWork(t *testing.T) {
	t.Parallel()
	alice := startNode(t, "Alice")
	bob := startNode(t, "Bob")

	t.Run("/connect dials the address and the two meet", func(t *testing.T) {
		out := alice.Command("/connect " + bob.Addr())
		if !slices.Contains(out, "*** dialing "+bob.Addr()) {
			t.Errorf("/connect printed %q, want \"*** dialing %s\"", out, bob.Addr())
		}
		alice.WaitLine("*** Bob joined")
		bob.WaitLine("*** Alice joined")
		waitMesh(t, alice, bob)
	})

	t.Run("/me shows the action at both", func(t *testing.T) {
		alice.Send("/me waves")
		alice.WaitLine(chatLine("Alice", "* waves"))
		bob.WaitLine(chatLine("Alice", "* waves"))
	})

	t.Run("/history 3 shows exactly the last three lines", func(t *testing.T) {
		lines := sayLines(alice, "history", 5)
		for _, l := range lines {
			bob.WaitLine(l)
		}
		var shown []string
		for _, l := range bob.Command("/history 3") {
			if m := strings.Index(l, " <"); m >= 0 && strings.Contains(l, "> ") {
				shown = append(shown, l[m+1:])
			}
		}
		if !slices.Equal(shown, lines[2:]) {
			t.Errorf("Bob's /history 3 shows %q, want %q", shown, lines[2:])
		}
	})

	t.Run("/peers lists the known peer as connected", func(t *testing.T) {
		out := alice.Command("/peers")
		if len(out) != 1 || !strings.HasPrefix(out[0], "Bob") || !strings.Contains(out[0], bob.ShortID) || !strings.Contains(out[0], "connected") {
			t.Errorf("Alice's /peers printed %q, want one line with Bob, %s and connected", out, bob.ShortID)
		}
		bob.Quit()
		alice.WaitLine("*** Bob left")
		out = alice.Command("/peers")
		if len(out) != 1 || !strings.Contains(out[0], bob.ShortID) || !strings.Contains(out[0], "last seen") {
			t.Errorf("Alice's /peers after Bob left printed %q, want one line with %s and last seen", out, bob.ShortID)
		}
	})
	alice.Quit()
}
