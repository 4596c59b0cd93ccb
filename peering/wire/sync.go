package wire

import (
	"fmt"

	"github.com/p2pchat/p2pchat/eventlog"
)

// Frame types of catch-up.
const (
	FrameSync    = "SYNC"
	FrameCatchup = "CATCHUP"
	FrameSynced  = "SYNCED"
	// FrameHave tells peers that catch-up brought this node lines it did
	// not have, so they ask it now instead of at their next interval:
	// caught-up lines are not relayed live, and this is how they still
	// cross a partial mesh quickly.
	FrameHave = "HAVE"
)

// SyncMsg is one frame of a SYNC request; More says another follows.
type SyncMsg struct {
	Origins []SyncOrigin `json:"origins"`
	More    bool         `json:"more,omitempty"`
	// Scope, from version 2 on, lists the origin ID prefixes (lowercase
	// hex nibbles) the request covers: the answer holds only origins
	// inside them, and an origin inside them that the request does not
	// list is one the sender holds nothing of. A request none of whose
	// frames has a scope covers every origin, as in version 1.
	Scope []string `json:"scope,omitempty"`
	// Round, from version 2 on, numbers the sender's requests on this
	// connection; the SYNCED that ends the answer repeats it, so a late
	// answer to a request given up on cannot end a newer one.
	Round uint64 `json:"round,omitempty"`
}

// SyncOrigin is what the sender holds of one origin. An origin it does not
// list, it holds nothing of.
type SyncOrigin struct {
	Origin    eventlog.NodeID  `json:"origin"`
	Watermark uint64           `json:"watermark"`
	Max       uint64           `json:"max"`
	Missing   []eventlog.Range `json:"missing,omitempty"`
}

// CatchupMsg carries one stored message in answer to SYNC: exactly one of
// its fields is set.
type CatchupMsg struct {
	Chat   *ChatMsg   `json:"chat,omitempty"`
	Nick   *NickMsg   `json:"nick,omitempty"`
	Sealed *SealedMsg `json:"sealed,omitempty"`
	Ack    *AckMsg    `json:"ack,omitempty"`
}

// SyncedMsg ends the answer to a SYNC request: the lines sent, and the
// request's Round.
type SyncedMsg struct {
	Sent  int    `json:"sent"`
	Round uint64 `json:"round,omitempty"`
}

// Validate checks the bounds of one SYNC frame.
func (m SyncMsg) Validate() error {
	if len(m.Origins) > MaxSyncOriginsPerFrame {
		return fmt.Errorf("SYNC lists %d origins, the limit is %d", len(m.Origins), MaxSyncOriginsPerFrame)
	}
	for _, p := range m.Scope {
		if err := CheckPrefix(p); err != nil {
			return fmt.Errorf("SYNC scope: %w", err)
		}
	}
	for _, o := range m.Origins {
		if len(o.Missing) > MaxSyncRanges {
			return fmt.Errorf("SYNC lists %d missing ranges for %s, the limit is %d", len(o.Missing), o.Origin.Short(), MaxSyncRanges)
		}
		for _, r := range o.Missing {
			if r.From == 0 || r.From > r.To || r.From <= o.Watermark || r.To > o.Max {
				return fmt.Errorf("SYNC range %d-%d of %s is out of order", r.From, r.To, o.Origin.Short())
			}
		}
		if o.Max < o.Watermark {
			return fmt.Errorf("SYNC max %d of %s is below its watermark %d", o.Max, o.Origin.Short(), o.Watermark)
		}
	}
	return nil
}

// Bounds of a SYNC frame that every version accepts.
const (
	// MaxSyncOriginsPerFrame is how many origins one SYNC frame may list.
	MaxSyncOriginsPerFrame = 300
	// MaxSyncRanges is how many missing ranges one origin may list.
	MaxSyncRanges = 32
)

// Wants reports whether a peer in state s lacks origin seq seq.
func (s SyncOrigin) Wants(seq uint64) bool {
	if seq > max(s.Max, s.Watermark) {
		return true
	}
	for _, r := range s.Missing {
		if seq >= r.From && seq <= r.To {
			return true
		}
	}
	return false
}

// FirstWanted is the lowest origin seq a peer in state s may lack.
func (s SyncOrigin) FirstWanted() uint64 {
	if len(s.Missing) > 0 {
		return s.Missing[0].From
	}
	return max(s.Max, s.Watermark) + 1
}

// Lacked is the number of origin seqs a peer in state s says it lacks
// below its highest: the holes, which are all an answer can be checked
// against.
func (s SyncOrigin) Lacked() int64 {
	var n int64
	for _, r := range s.Missing {
		n += int64(r.To - r.From + 1)
	}
	return n
}
