package peering

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

const warnLevel = zerolog.WarnLevel

// maxLogKeys bounds the keys a logLimiter remembers, so that a flood of
// addresses cannot grow it; past the bound the rest share one key.
const maxLogKeys = 4096

// logLimiter lets through at most one log line per key (a remote address,
// a peer) per interval, so that one misbehaving peer cannot flood the log.
// The next line let through says how many were held back in between.
type logLimiter struct {
	mu    sync.Mutex
	seen  map[string]*logSlot
	swept time.Time // when expired keys were last removed
}

type logSlot struct {
	at         time.Time
	suppressed int
}

// allow reports whether a line for key may be logged at now, and how many
// lines for it were held back since the last one.
func (l *logLimiter) allow(key string, now time.Time, every time.Duration) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]*logSlot{}
	}
	if _, known := l.seen[key]; !known && len(l.seen) >= maxLogKeys {
		// Sweep at most once per interval, so that a stream of new keys
		// does not cost a sweep each.
		if now.Sub(l.swept) >= every {
			l.swept = now
			for k, s := range l.seen {
				if now.Sub(s.at) >= every {
					delete(l.seen, k)
				}
			}
		}
		if len(l.seen) >= maxLogKeys {
			key = "*"
		}
	}
	s := l.seen[key]
	if s == nil {
		l.seen[key] = &logSlot{at: now}
		return true, 0
	}
	if now.Sub(s.at) < every {
		s.suppressed++
		return false, 0
	}
	suppressed = s.suppressed
	s.at, s.suppressed = now, 0
	return true, suppressed
}

// limitedLog starts a log line about key at level, or returns nil (on
// which zerolog's methods do nothing) if a line about key was logged less
// than Config.LogEvery ago.
func (n *Node) limitedLog(key string, level zerolog.Level) *zerolog.Event {
	ok, suppressed := n.logLimit.allow(key, time.Now(), n.cfg.LogEvery)
	if !ok {
		return nil
	}
	e := n.logger.WithLevel(level)
	if suppressed > 0 {
		e = e.Int("suppressed", suppressed)
	}
	return e
}
