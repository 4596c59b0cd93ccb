package peering

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/peering/wire"
	"golang.org/x/time/rate"
)

// budgetTestTake spends one unit of lim at now, as the read loop does for
// a frame, and returns how long it would wait.
func budgetTestTake(b *connBudget, lim *rate.Limiter, now time.Time, grace, window time.Duration) (time.Duration, error) {
	return b.hold(now, reserve(lim, now, 1), "chat", grace, window)
}

func TestChatBudgetLetsTheBurstThroughThenPacesToTheRate(t *testing.T) {
	var b connBudget
	now := time.Unix(1_700_000_000, 0)
	const rps, burst = 1000, 50
	lim := rate.NewLimiter(rps, burst)
	lim.SetLimitAt(now, rps) // the bucket starts full at now
	for i := range burst {
		if wait, err := budgetTestTake(&b, lim, now, time.Minute, time.Minute); wait != 0 || err != nil {
			t.Fatalf("frame %d of the burst: wait %s, err %v", i, wait, err)
		}
	}
	// Past the burst, frames go on credit until the debt is worth a
	// timer, then the reader waits for exactly the debt.
	var wait time.Duration
	frames := 0
	for wait == 0 {
		var err error
		if wait, err = budgetTestTake(&b, lim, now, time.Minute, time.Minute); err != nil {
			t.Fatal(err)
		}
		frames++
	}
	if want := time.Duration(frames) * time.Second / rps; wait != want {
		t.Errorf("after %d frames over the burst: wait %s, want %s", frames, wait, want)
	}
	// Waiting that long pays the debt: the next frame is on credit again.
	now = now.Add(wait)
	if wait, err := budgetTestTake(&b, lim, now, time.Minute, time.Minute); wait != 0 || err != nil {
		t.Errorf("first frame after the wait: wait %s, err %v", wait, err)
	}
	// A quiet spell refills the bucket, but never beyond the burst.
	now = now.Add(time.Hour)
	for i := range burst {
		if wait, _ := budgetTestTake(&b, lim, now, time.Minute, time.Minute); wait != 0 {
			t.Fatalf("frame %d after an hour: wait %s", i, wait)
		}
	}
	_, _ = budgetTestTake(&b, lim, now, time.Minute, time.Minute)
	if tokens := lim.TokensAt(now); tokens >= 0 {
		t.Errorf("an hour of quiet gave more than the burst: %v tokens left", tokens)
	}
}

func TestChatBudgetCallsItAFloodOnceTheWaitsExceedTheGrace(t *testing.T) {
	var b connBudget
	now := time.Unix(1_700_000_000, 0)
	const rps, burst, grace, window = 100, 10, time.Second, 10 * time.Second
	lim := rate.NewLimiter(rps, burst)
	var waited time.Duration
	for {
		wait, err := budgetTestTake(&b, lim, now, grace, window)
		if err != nil {
			if !errors.Is(err, errPenalized) {
				t.Fatalf("flood error %v does not say penalized", err)
			}
			if waited > grace || waited < grace-time.Second/rps*10 {
				t.Errorf("flood declared after %s of waits, grace %s", waited, grace)
			}
			return
		}
		waited += wait
		now = now.Add(wait)
	}
}

func TestChatBudgetForgetsWaitsOfAnEarlierWindow(t *testing.T) {
	var b connBudget
	now := time.Unix(1_700_000_000, 0)
	const rps, burst, grace, window = 100, 10, time.Second, 10 * time.Second
	lim := rate.NewLimiter(rps, burst)
	// Wait for most of the grace, rest past the window, and do it again:
	// two moderate bursts are not a flood.
	for round := 0; round < 3; round++ {
		var waited time.Duration
		for waited < grace*8/10 {
			wait, err := budgetTestTake(&b, lim, now, grace, window)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			waited += wait
			now = now.Add(wait)
		}
		now = now.Add(window)
	}
}

// budgetTestConn is a connection whose budget is one frame, after which
// any wait counts as a flood.
func budgetTestConn() *conn {
	cfg := DefaultConfig()
	cfg.ChatRate, cfg.ChatBurst, cfg.FloodGrace = 1, 1, time.Nanosecond
	c := &conn{n: &Node{cfg: cfg, logger: cfg.Logger}, closing: make(chan struct{})}
	c.budget.setup(&cfg)
	return c
}

func TestChatBudgetChargesWhatCostsWorkOnly(t *testing.T) {
	for _, typ := range []string{wire.FrameChat, wire.FrameNick, wire.FramePrivate, wire.FramePeers, wire.FrameSync} {
		c := budgetTestConn()
		for _, free := range []string{wire.FramePing, wire.FramePong, wire.FramePrivAck, "FUTURE"} {
			for range 10 {
				if err := c.charge(free, 10); err != nil {
					t.Fatalf("%s was charged: %v", free, err)
				}
			}
		}
		if err := c.charge(typ, 100); err != nil {
			t.Fatalf("the first %s is within the burst: %v", typ, err)
		}
		if err := c.charge(typ, 100); !errors.Is(err, errPenalized) {
			t.Errorf("a second %s beyond the budget: %v, want a flood", typ, err)
		}
	}
}

func TestAPastedFileOf5000LinesArrivesWithoutADisconnect(t *testing.T) {
	a := netTestStart(t, "Alice", nil)
	b := netTestStart(t, "Bob", netTestSeeds(a))
	netTestWaitFor(t, 10*time.Second, "Alice and Bob connected", func() bool {
		return a.connectedTo(b) && b.connectedTo(a)
	})
	lines := netTestLines("pasted", 5000)
	for _, line := range lines {
		a.say(t, line)
	}
	netTestWaitFor(t, 60*time.Second, "Bob shows all 5000 lines", func() bool {
		return b.display.chatsWithPrefix("pasted ") == len(lines)
	})
	if got := b.logs.lines("disconnected"); len(got) != 0 {
		t.Errorf("Bob logged disconnects: %v", got)
	}
	if !a.connectedTo(b) {
		t.Error("Alice lost Bob")
	}
}

func TestChatOverTheBudgetIsSlowedDownNotDropped(t *testing.T) {
	const rate, burst, n = 1000, 200, 2000
	a := netTestStart(t, "Alice", nil)
	b := netTestStart(t, "Bob", func(cfg *Config) {
		netTestSeeds(a)(cfg)
		cfg.ChatRate, cfg.ChatBurst = rate, burst
	})
	netTestWaitFor(t, 10*time.Second, "Alice and Bob connected", func() bool {
		return a.connectedTo(b) && b.connectedTo(a)
	})
	start := time.Now()
	for _, line := range netTestLines("paced", n) {
		a.say(t, line)
	}
	netTestWaitFor(t, 60*time.Second, "Bob shows every line", func() bool {
		return b.display.chatsWithPrefix("paced ") == n
	})
	// The budget held Bob's reading back: no faster than the rate allows.
	if took, least := time.Since(start), time.Duration(n-burst)*time.Second/rate; took < least*9/10 {
		t.Errorf("%d lines arrived in %s, faster than the budget allows (%s)", n, took, least)
	}
	if got := b.logs.lines("disconnected"); len(got) != 0 {
		t.Errorf("Bob logged disconnects: %v", got)
	}
}

// A paste longer than the chat budget's burst is sent at the budget's
// rate: the peer, which grants the same budget, never waits for it long
// enough to take the paste for a flood, and gets every line. Unpaced, the
// 800 lines past the burst would keep Bob's reading back 2 s, four times
// the grace. Alice is told that her paste is held back.
func TestAPasteLongerThanTheBudgetIsPacedAndNeverPenalized(t *testing.T) {
	const rate, burst, n = 400, 100, 900
	budget := func(cfg *Config) {
		cfg.ChatRate, cfg.ChatBurst = rate, burst
		cfg.FloodGrace, cfg.FloodWindow = 500*time.Millisecond, time.Minute
	}
	a := netTestStart(t, "Alice", budget)
	b := netTestStart(t, "Bob", func(cfg *Config) { budget(cfg); netTestSeeds(a)(cfg) })
	netTestWaitFor(t, 10*time.Second, "Alice and Bob connected", func() bool {
		return a.connectedTo(b) && b.connectedTo(a)
	})
	for _, line := range netTestLines("long", n) {
		a.say(t, line)
	}
	netTestWaitFor(t, 60*time.Second, "Bob shows every line", func() bool {
		return b.display.chatsWithPrefix("long ") == n
	})
	if _, penalized := b.penalties.active(a.ID(), time.Now()); penalized {
		t.Error("Bob penalized Alice for her paste")
	}
	if got := b.logs.lines("disconnected"); len(got) != 0 {
		t.Errorf("Bob logged disconnects: %v", got)
	}
	if !a.display.sawSystem("long paste: sending 360 lines a second") {
		t.Error("Alice was not told that her paste is held back")
	}
}

func TestAFloodingPeerIsDisconnectedAndItsIDRefused(t *testing.T) {
	a := netTestStart(t, "Alice", func(cfg *Config) {
		cfg.ChatRate, cfg.ChatBurst = 200, 20
		cfg.FloodGrace, cfg.FloodWindow, cfg.FloodPenalty = 300*time.Millisecond, 10*time.Second, time.Minute
	})
	key, _ := netTestNewKey(t)
	p := netTestDialTLS(t, a.Addr().String(), key)
	if err := p.join("Mallory"); err != nil {
		t.Fatal(err)
	}
	if typ, _, err := p.next(5 * time.Second); err != nil || typ != wire.FrameJoin {
		t.Fatalf("first frame %q, %v; want JOIN", typ, err)
	}
	// Flood from a goroutine that stops when the node closes the
	// connection, or at the latest when the test does.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := uint64(1); ; seq++ {
			if p.write(wire.FrameChat, netTestChat(key, seq, "spam")) != nil {
				return
			}
		}
	}()
	if reason := p.goodbye(t, 20*time.Second); reason != errPenalized.Error() {
		t.Errorf("flooder told %q, want %q", reason, errPenalized)
	}
	p.tc.Close()
	<-done
	if !a.logs.has("penalized peer", "chat flood") {
		t.Errorf("no log line says why the peer was penalized:\n%s", a.logs)
	}

	// The same ID is refused before it learns anything, even from
	// another connection.
	again := netTestDialTLS(t, a.Addr().String(), key)
	if typ, payload, err := again.next(5 * time.Second); err != nil || typ != wire.FrameGoodbye || !strings.Contains(string(payload), "penalized") {
		t.Fatalf("penalized peer dialing again got %s %s, %v; want GOODBYE penalized", typ, payload, err)
	}

	// An honest peer from the same address is welcome.
	b := netTestStart(t, "Bob", netTestSeeds(a))
	netTestWaitFor(t, 10*time.Second, "Alice and Bob connected", func() bool {
		return a.connectedTo(b) && b.connectedTo(a)
	})
	b.say(t, "I am not Mallory")
	netTestWaitFor(t, 10*time.Second, "Alice shows Bob's line", func() bool { return a.display.saw("I am not Mallory") })
	if got := a.display.count("spam"); got > 1000 {
		t.Errorf("Alice showed %d spam lines", got)
	}
}
