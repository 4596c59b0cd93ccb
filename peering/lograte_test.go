package peering

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestLogLimiterLetsOneLinePerKeyPerIntervalAndCountsTheRest(t *testing.T) {
	var l logLimiter
	now := time.Unix(1_700_000_000, 0)
	const every = 10 * time.Second
	if ok, _ := l.allow("ip 192.0.2.1", now, every); !ok {
		t.Fatal("the first line was held back")
	}
	for i := range 99 {
		if ok, _ := l.allow("ip 192.0.2.1", now.Add(time.Duration(i)*time.Millisecond), every); ok {
			t.Fatalf("line %d within the interval was let through", i+2)
		}
	}
	if ok, _ := l.allow("ip 192.0.2.2", now, every); !ok {
		t.Error("another address was held back by the first")
	}
	ok, suppressed := l.allow("ip 192.0.2.1", now.Add(every), every)
	if !ok || suppressed != 99 {
		t.Errorf("after the interval: ok %v, suppressed %d; want true, 99", ok, suppressed)
	}
}

func TestLogLimiterStaysBoundedUnderManyKeys(t *testing.T) {
	var l logLimiter
	now := time.Unix(1_700_000_000, 0)
	for i := range 3 * maxLogKeys {
		l.allow(fmt.Sprintf("ip 10.0.%d.%d", i/256, i%256), now, time.Minute)
	}
	if len(l.seen) > maxLogKeys+1 {
		t.Errorf("the limiter remembers %d keys, bound %d", len(l.seen), maxLogKeys)
	}
	// Once the old keys have expired, new ones get their own line again.
	later := now.Add(time.Hour)
	if ok, _ := l.allow("ip 198.51.100.1", later, time.Minute); !ok {
		t.Error("a new address after the others expired was held back")
	}
	if ok, _ := l.allow("ip 198.51.100.2", later, time.Minute); !ok {
		t.Error("a second new address after the others expired was held back")
	}
}

func TestLimitedLogSaysHowManyLinesWereHeldBack(t *testing.T) {
	var logs netTestLogs
	n := &Node{cfg: Config{LogEvery: time.Hour}, logger: zerolog.New(&logs)}
	for range 5 {
		n.limitedLog("peer x", warnLevel).Str("peer", "x").Msg("dropping peer")
	}
	if got := strings.Count(logs.String(), "dropping peer"); got != 1 {
		t.Fatalf("%d lines logged, want 1:\n%s", got, logs.String())
	}
	// Make the interval pass for the key.
	n.logLimit.seen["peer x"].at = time.Now().Add(-2 * time.Hour)
	n.limitedLog("peer x", warnLevel).Msg("dropping peer")
	if lines := logs.lines("dropping peer"); len(lines) != 2 || lines[1]["suppressed"] != float64(4) {
		t.Errorf("second line %v, want suppressed 4", lines)
	}
}
