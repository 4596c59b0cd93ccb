package eventlog_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/store"
	"pgregory.net/rapid"
)

func TestPeerRowFoldsTheEventsAboutThePeer(t *testing.T) {
	bob := originKey("bob")
	id := idOf(bob)
	until := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name   string
		events []eventlog.Body
		check  func(p eventlog.Peer) string
	}{
		{"join sets name and addresses",
			[]eventlog.Body{eventlog.Join{ID: id, Name: "Bob", Addrs: []string{"10.0.0.2:8081"}}},
			func(p eventlog.Peer) string {
				return want(p.Name == "Bob" && reflect.DeepEqual(p.Addrs, []string{"10.0.0.2:8081"}), "name Bob at 10.0.0.2:8081")
			}},
		{"hearsay names a peer but never renames it",
			[]eventlog.Body{
				eventlog.Peers{From: peerID("carol"), Peers: []eventlog.PeerInfo{{ID: id, Name: "Bobby", Addrs: []string{"10.9.9.9:1"}}}},
				eventlog.Join{ID: id, Name: "Bob", Addrs: []string{"10.0.0.2:8081"}},
				eventlog.Peers{From: peerID("carol"), Peers: []eventlog.PeerInfo{{ID: id, Name: "Robert", Addrs: []string{"10.9.9.8:1"}}}},
			},
			func(p eventlog.Peer) string {
				return want(p.Name == "Bob" && reflect.DeepEqual(p.Addrs, []string{"10.0.0.2:8081", "10.9.9.9:1", "10.9.9.8:1"}),
					"name Bob, own address first, hearsay after")
			}},
		{"addresses are capped",
			[]eventlog.Body{eventlog.Join{ID: id, Name: "Bob", Addrs: []string{"a:1", "b:1", "c:1", "d:1", "e:1", "f:1", "g:1", "h:1", "i:1", "a:1", ""}}},
			func(p eventlog.Peer) string { return want(len(p.Addrs) == eventlog.MaxAddrs, "8 addresses") }},
		{"dial failures count up and a connect resets them",
			[]eventlog.Body{eventlog.DialFailed{ID: id}, eventlog.DialFailed{ID: id}, eventlog.Connect{ID: id, Addr: "10.0.0.2:8081"}, eventlog.DialFailed{ID: id}},
			func(p eventlog.Peer) string {
				return want(p.DialFailures == 1 && !p.LastConnect.IsZero() && p.LastDialFailure.After(p.LastConnect), "1 failure after the connect")
			}},
		{"an outbound connect remembers the dialed address first",
			[]eventlog.Body{eventlog.Join{ID: id, Name: "Bob", Addrs: []string{"10.0.0.2:8081"}}, eventlog.Connect{ID: id, Addr: "192.168.1.5:8081"}},
			func(p eventlog.Peer) string {
				return want(reflect.DeepEqual(p.Addrs, []string{"192.168.1.5:8081", "10.0.0.2:8081"}), "dialed address first")
			}},
		{"an inbound connect does not take the remote port for a listen address",
			[]eventlog.Body{eventlog.Connect{ID: id, Addr: "10.0.0.2:53211", Inbound: true}},
			func(p eventlog.Peer) string { return want(len(p.Addrs) == 0, "no address") }},
		{"disconnect is recorded",
			[]eventlog.Body{eventlog.Connect{ID: id}, eventlog.Disconnect{ID: id, Reason: "EOF"}},
			func(p eventlog.Peer) string {
				return want(p.LastDisconnect.After(p.LastConnect), "disconnect after connect")
			}},
		{"ban then unban",
			[]eventlog.Body{eventlog.Ban{ID: id, Until: until}, eventlog.Unban{ID: id}},
			func(p eventlog.Peer) string { return want(!p.Banned && p.BannedUntil.IsZero(), "not banned") }},
		{"a ban holds until its end",
			[]eventlog.Body{eventlog.Ban{ID: id, Until: until}},
			func(p eventlog.Peer) string {
				return want(p.BannedAt(until.Add(-time.Second)) && !p.BannedAt(until), "banned until 2027")
			}},
		{"a late older nick does not undo a newer one",
			[]eventlog.Body{signedNick(bob, "Rob", 5), signedNick(bob, "Bobby", 3)},
			func(p eventlog.Peer) string { return want(p.Name == "Rob" && p.NickSeq == 5, "name Rob from nick 5") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLog(t)
			for _, e := range c.events {
				appendOK(t, l, e)
			}
			p, ok, err := l.Peer(id)
			if err != nil || !ok {
				t.Fatalf("Peer = %v, %v", ok, err)
			}
			if msg := c.check(p); msg != "" {
				t.Errorf("peer row %+v: %s", p, msg)
			}
			assertClean(t, l)
		})
	}
}

func want(ok bool, what string) string {
	if ok {
		return ""
	}
	return "want " + what
}

func TestTheNodeNeverGetsAPeerRow(t *testing.T) {
	l := newLog(t)
	appendOK(t, l,
		eventlog.Join{ID: l.Self(), Name: "Me", Addrs: []string{"127.0.0.1:8080"}},
		eventlog.Peers{From: peerID("bob"), Peers: []eventlog.PeerInfo{{ID: l.Self(), Name: "Me"}}},
		eventlog.Nick{Name: "NewMe"},
	)
	peers, err := l.Peers()
	if err != nil || len(peers) != 0 {
		t.Errorf("Peers = %+v, %v; want none", peers, err)
	}
}

// contiguous is the highest n with 1..n all in held: what a watermark
// must say.
func contiguous(held map[uint64]bool) uint64 {
	var n uint64
	for held[n+1] {
		n++
	}
	return n
}

var (
	propNames = []string{"Alice", "Bob", "Carol", "Dmitri", "Éva", "李雷", "B\xffb"}
	propAddrs = []string{"10.0.0.1:8080", "10.0.0.2:8081", "[fe80::1]:9000", "node.example:7000", "h\xfe:1", ""}
	propZones = []*time.Location{time.UTC, time.FixedZone("CEST", 2*3600), time.FixedZone("PST", -8*3600)}
)

// propGen draws the bodies of the property test. Origins are a few fixed
// keys plus the node's own key (its own lines coming back from peers);
// origin seqs are small so that holes, out-of-order arrivals and repeats
// are common.
type propGen struct {
	self    eventlog.NodeID
	keys    []ed25519.PrivateKey
	ids     []eventlog.NodeID
	maxOSeq int
}

func (g propGen) id(t *rapid.T) eventlog.NodeID {
	return rapid.SampledFrom(g.ids).Draw(t, "id")
}

func (g propGen) addrs(t *rapid.T) []string {
	return rapid.SliceOfN(rapid.SampledFrom(propAddrs), 0, 3).Draw(t, "addrs")
}

func (g propGen) at(t *rapid.T) time.Time {
	if rapid.Bool().Draw(t, "zero time") {
		return time.Time{}
	}
	offset := time.Duration(rapid.Int64Range(0, 1e15).Draw(t, "offset"))
	return chatEpoch.Add(offset).In(rapid.SampledFrom(propZones).Draw(t, "zone"))
}

// signed returns a key index, or -1 for a line of the node's own.
func (g propGen) origin(t *rapid.T) (int, uint64) {
	k := rapid.IntRange(-1, len(g.keys)-1).Draw(t, "origin")
	if k < 0 {
		return -1, 0
	}
	return k, uint64(rapid.IntRange(1, g.maxOSeq).Draw(t, "origin seq"))
}

func (g propGen) body(t *rapid.T) eventlog.Body {
	name := rapid.SampledFrom(propNames)
	switch rapid.IntRange(0, 10).Draw(t, "type") {
	case 0:
		return eventlog.Join{ID: g.id(t), Name: name.Draw(t, "name"), Addrs: g.addrs(t), Version: 1}
	case 1:
		n := rapid.IntRange(0, 4).Draw(t, "peers")
		b := eventlog.Peers{From: g.id(t)}
		for range n {
			b.Peers = append(b.Peers, eventlog.PeerInfo{ID: g.id(t), Name: name.Draw(t, "name"), Addrs: g.addrs(t)})
		}
		return b
	case 2:
		return eventlog.Connect{ID: g.id(t), Addr: rapid.SampledFrom(propAddrs).Draw(t, "addr"), Inbound: rapid.Bool().Draw(t, "inbound")}
	case 3:
		return eventlog.Disconnect{ID: g.id(t), Reason: "EOF"}
	case 4:
		return eventlog.DialFailed{ID: g.id(t), Addr: rapid.SampledFrom(propAddrs).Draw(t, "addr"), Error: "connection refused"}
	case 5, 6:
		k, seq := g.origin(t)
		text := fmt.Sprintf("line %d", rapid.IntRange(0, 99).Draw(t, "text"))
		if k < 0 {
			return eventlog.Chat{Name: name.Draw(t, "name"), Text: text}
		}
		return signedChat(g.keys[k], name.Draw(t, "name"), seq, text)
	case 7:
		k, seq := g.origin(t)
		if k < 0 {
			return eventlog.Nick{Name: name.Draw(t, "name")}
		}
		return signedNick(g.keys[k], name.Draw(t, "name"), seq)
	case 8:
		if rapid.Bool().Draw(t, "outgoing") {
			return eventlog.Private{From: g.self, To: g.id(t), Text: "psst"}
		}
		return eventlog.Private{From: g.id(t), Text: "psst", Ref: uint64(rapid.IntRange(1, 9).Draw(t, "ref"))}
	case 9:
		return eventlog.Delivered{To: g.id(t), Seq: uint64(rapid.IntRange(1, 40).Draw(t, "delivered"))}
	default:
		if rapid.Bool().Draw(t, "unban") {
			return eventlog.Unban{ID: g.id(t)}
		}
		return eventlog.Ban{ID: g.id(t), Until: g.at(t), Reason: "test"}
	}
}

func TestProjectionEqualsRebuildAfterRandomEvents(t *testing.T) {
	root := t.TempDir()
	rapid.Check(t, func(rt *rapid.T) {
		dir, err := os.MkdirTemp(root, "node")
		if err != nil {
			rt.Fatal(err)
		}
		defer os.RemoveAll(dir)
		st, err := store.Open(dir, store.Options{NoSync: true})
		if err != nil {
			rt.Fatal(err)
		}
		defer st.Close()
		// A small table bound has hearsay evict rows now and then.
		maxPeers := rapid.IntRange(1, 8).Draw(rt, "max peers")
		l, err := eventlog.Open(st, eventlog.Options{Now: newClock().now, MaxPeers: maxPeers})
		if err != nil {
			rt.Fatal(err)
		}
		defer l.Close()

		g := propGen{self: l.Self(), maxOSeq: 8}
		for _, name := range []string{"alice", "bob", "carol"} {
			g.keys = append(g.keys, originKey(name))
			g.ids = append(g.ids, idOf(originKey(name)))
		}
		g.keys = append(g.keys, l.Key())
		g.ids = append(g.ids, l.Self(), peerID("dmitri"), peerID("eva"))

		// The model: which origin seqs the log holds, per origin.
		held := map[eventlog.NodeID]map[uint64]bool{}
		hold := func(origin eventlog.NodeID, seq uint64) (dup bool) {
			if held[origin] == nil {
				held[origin] = map[uint64]bool{}
			}
			dup = held[origin][seq]
			held[origin][seq] = true
			return dup
		}
		// Up to 150, so that batches cross the chat index's blocks of 64.
		bodies := rapid.SliceOfN(rapid.Custom(g.body), 1, 150).Draw(rt, "bodies")
		var stored uint64
		for len(bodies) > 0 {
			n := rapid.IntRange(1, len(bodies)).Draw(rt, "batch")
			batch := bodies[:n]
			bodies = bodies[n:]
			res, err := l.Append(context.Background(), batch...)
			if err != nil {
				rt.Fatalf("Append: %v", err)
			}
			for i, body := range batch {
				s, ok := body.(eventlog.Signed)
				if !ok {
					// A failed dial of an unknown node in a full
					// table is the one unsigned body not stored.
					if res[i].NoRoom {
						continue
					}
					stored++
					continue
				}
				origin, seq := s.OriginKey()
				if seq == 0 {
					origin, seq = l.Self(), highest(held[l.Self()])+1
					if _, got := res[i].Body.(eventlog.Signed).OriginKey(); got != seq {
						rt.Fatalf("own %v got origin seq %d, want %d", body.Type(), got, seq)
					}
				}
				if dup := hold(origin, seq); res[i].Duplicate != dup {
					rt.Fatalf("%v %s/%d: Duplicate = %v, want %v", body.Type(), origin.Short(), seq, res[i].Duplicate, dup)
				}
				if !res[i].Duplicate {
					stored++
				}
			}
		}

		rep, err := l.Verify(context.Background())
		if err != nil {
			rt.Fatalf("Verify: %v", err)
		}
		if len(rep.Problems) > 0 {
			rt.Fatalf("Verify found problems:\n%s", strings.Join(rep.Problems, "\n"))
		}
		if rep.Events != stored {
			rt.Fatalf("Verify counted %d events, %d were stored", rep.Events, stored)
		}
		wantMarks := map[eventlog.NodeID]uint64{}
		for origin, seqs := range held {
			if n := contiguous(seqs); n > 0 {
				wantMarks[origin] = n
			}
		}
		marks, err := l.Watermarks()
		if err != nil {
			rt.Fatal(err)
		}
		if !reflect.DeepEqual(marks, wantMarks) {
			rt.Fatalf("Watermarks = %v, want %v", marks, wantMarks)
		}
	})
}

func TestVerifyIsCleanAfterStringsThatAreNotUTF8(t *testing.T) {
	l := newLog(t)
	id := peerID("bob")
	// The peer table keeps rows as JSON, which turns invalid UTF-8 into
	// U+FFFD; the rebuild must see the rows the same way.
	appendOK(t, l, eventlog.Join{ID: id, Name: "B\xffb", Addrs: []string{"h\xff:1"}})
	appendOK(t, l, eventlog.Join{ID: id, Name: "B\xffb", Addrs: []string{"h\xff:1"}})
	appendOK(t, l, eventlog.Peers{From: id, Peers: []eventlog.PeerInfo{{ID: peerID("carol"), Name: "C\xfe", Addrs: []string{"c\xfe:1", "c\xfe:1"}}}})
	appendOK(t, l, eventlog.Peers{From: id, Peers: []eventlog.PeerInfo{{ID: peerID("carol"), Name: "C\xfe", Addrs: []string{"c\xfe:1"}}}})
	assertClean(t, l)
}

// highest is the largest seq in seqs, 0 for none.
func highest(seqs map[uint64]bool) uint64 {
	var top uint64
	for s := range seqs {
		top = max(top, s)
	}
	return top
}
