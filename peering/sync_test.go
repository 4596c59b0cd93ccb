package peering

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
)

func TestSyncOriginWantsWhatItLacks(t *testing.T) {
	// Holds 1-5, 8, 10-12 of an origin: missing 6-7 and 9.
	s := wire.SyncOrigin{Watermark: 5, Max: 12, Missing: []eventlog.Range{{From: 6, To: 7}, {From: 9, To: 9}}}
	for seq, want := range map[uint64]bool{1: false, 5: false, 6: true, 7: true, 8: false, 9: true, 10: false, 12: false, 13: true, 1000: true} {
		if got := s.Wants(seq); got != want {
			t.Errorf("wants(%d) = %v, want %v", seq, got, want)
		}
	}
	if got := s.FirstWanted(); got != 6 {
		t.Errorf("firstWanted = %d, want 6", got)
	}
}

func TestAnOriginNotListedIsWantedWhole(t *testing.T) {
	var none wire.SyncOrigin
	if !none.Wants(1) || none.FirstWanted() != 1 {
		t.Errorf("an unlisted origin must want everything from seq 1")
	}
	full := wire.SyncOrigin{Watermark: 7, Max: 7}
	if full.Wants(7) || !full.Wants(8) || full.FirstWanted() != 8 {
		t.Errorf("a contiguous origin must want only what follows its watermark")
	}
}

func TestSyncMsgValidateRefusesNonsense(t *testing.T) {
	tooMany := wire.SyncMsg{Origins: make([]wire.SyncOrigin, wire.MaxSyncOriginsPerFrame+1)}
	manyRanges := wire.SyncOrigin{Watermark: 0, Max: 1000}
	for i := 0; i <= wire.MaxSyncRanges; i++ {
		manyRanges.Missing = append(manyRanges.Missing, eventlog.Range{From: uint64(2*i + 1), To: uint64(2*i + 1)})
	}
	for _, c := range []struct {
		name string
		msg  wire.SyncMsg
		ok   bool
	}{
		{"empty", wire.SyncMsg{}, true},
		{"plain", wire.SyncMsg{Origins: []wire.SyncOrigin{{Watermark: 3, Max: 9, Missing: []eventlog.Range{{From: 4, To: 8}}}}}, true},
		{"too many origins", tooMany, false},
		{"too many ranges", wire.SyncMsg{Origins: []wire.SyncOrigin{manyRanges}}, false},
		{"range below the watermark", wire.SyncMsg{Origins: []wire.SyncOrigin{{Watermark: 5, Max: 9, Missing: []eventlog.Range{{From: 3, To: 4}}}}}, false},
		{"range past max", wire.SyncMsg{Origins: []wire.SyncOrigin{{Watermark: 1, Max: 9, Missing: []eventlog.Range{{From: 8, To: 10}}}}}, false},
		{"reversed range", wire.SyncMsg{Origins: []wire.SyncOrigin{{Watermark: 1, Max: 9, Missing: []eventlog.Range{{From: 6, To: 5}}}}}, false},
		{"max below watermark", wire.SyncMsg{Origins: []wire.SyncOrigin{{Watermark: 9, Max: 2}}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.msg.Validate(); (err == nil) != c.ok {
				t.Errorf("Validate = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestSyncStateSplitsIntoFramesThatReassemble(t *testing.T) {
	var states []eventlog.OriginState
	for i := 0; i < 2*wire.MaxSyncOriginsPerFrame+7; i++ {
		var id eventlog.NodeID
		id[0], id[1] = byte(i), byte(i>>8)
		states = append(states, eventlog.OriginState{Origin: id, Watermark: uint64(i), Max: uint64(i + 2), Missing: []eventlog.Range{{From: uint64(i + 1), To: uint64(i + 1)}}})
	}
	frames, _, err := syncFrames(states, wire.DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 3 {
		t.Fatalf("%d frames, want 3", len(frames))
	}
	got := map[eventlog.NodeID]wire.SyncOrigin{}
	for i, f := range frames {
		typ, payload, err := wire.NewFrameReader(bytes.NewReader(f), 0).Next()
		if err != nil || typ != wire.FrameSync {
			t.Fatalf("frame %d: %s, %v", i, typ, err)
		}
		var msg wire.SyncMsg
		if err := json.Unmarshal(payload, &msg); err != nil {
			t.Fatal(err)
		}
		if err := msg.Validate(); err != nil {
			t.Fatalf("frame %d does not validate: %v", i, err)
		}
		if msg.More != (i < len(frames)-1) {
			t.Errorf("frame %d: More = %v", i, msg.More)
		}
		for _, o := range msg.Origins {
			got[o.Origin] = o
		}
	}
	if len(got) != len(states) {
		t.Fatalf("reassembled %d origins, want %d", len(got), len(states))
	}
	for _, s := range states {
		if o := got[s.Origin]; o.Watermark != s.Watermark || o.Max != s.Max || len(o.Missing) != 1 {
			t.Errorf("origin %s came back as %+v", s.Origin.Short(), o)
		}
	}
}

func TestAnEmptyLogStillSendsOneSyncFrame(t *testing.T) {
	frames, _, err := syncFrames(nil, wire.DefaultMaxFrame)
	if err != nil || len(frames) != 1 {
		t.Fatalf("syncFrames(nil) = %d frames, %v; want 1, so the peer answers with what it has", len(frames), err)
	}
}
