package eventlog_test

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// goldenTime is the local time of every golden record.
var goldenTime = time.Date(2026, 5, 17, 8, 4, 6, 1, time.UTC)

// golden holds the stored form of every event type in every codec version,
// as the release that wrote it did: the bodies are goldenBodies()', in
// order, at goldenTime. These bytes are on people's disks; a change to the
// encoder that breaks one of them is a new codec version, never an edit
// here.
var golden = []struct {
	version int
	hex     string
	// body is the index into goldenBodies(); when noRef is set, the record
	// is a PRIVATE of the first version 1 layout, which had no Ref.
	body  int
	noRef bool
}{
	// Version 1: origin times of CHAT and NICK stored whole.
	{1, "010182f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de705416c696365020d31302e302e302e313a383038300a5b3a3a315d3a3830383001", 0, false},
	{1, "010282f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de702169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e103426f62010d31302e302e302e323a38303831c72a1137665cb7122e90ef4d240b1b705507430aeccf088ca3a740df0d114557054361726f6c00", 1, false},
	{1, "010382f0a8c7bdeaa5b031169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e10d31302e302e302e323a3830383101", 2, false},
	{1, "010482f0a8c7bdeaa5b031169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e11e726561643a20636f6e6e656374696f6e2072657365742062792070656572", 3, false},
	{1, "010582f0a8c7bdeaa5b031c72a1137665cb7122e90ef4d240b1b705507430aeccf088ca3a740df0d1145570d31302e302e302e333a38303832156469616c207463703a20692f6f2074696d656f7574", 4, false},
	{1, "010682f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de72a80d0d0cc83dd8a903105416c6963651168656c6c6f2c2077c3b6726c6420e29c93406465350ebb19efef50eafa91fd22f80a943834edb1509d7e6c8f3b8c6113deae7ebf1259d8055bd9f2cb766b939e238dee0c265835002f38019276c08ec61b06", 5, false},
	{1, "010782f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de7169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e105416c696365086a75737420796f75aafcb083b7eaa5b031", 6, true},
	{1, "010782f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de7169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e105416c696365086a75737420796f75aafcb083b7eaa5b0310c", 6, false},
	{1, "010b82f0a8c7bdeaa5b031169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e10c", 7, false},
	{1, "010882f0a8c7bdeaa5b031169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e10780d883eafeda8a903106526f6265727440692aae4240d0235fc6c8cdf7aea14de1ae7595b27cab3aaf93ccd537e4971863e4c393c289849be791ec32ed40831f682a60b8365e99b06bd0209f3acc9e2804", 8, false},
	{1, "010982f0a8c7bdeaa5b031b6746706feadd2c0e67e08c8139c6ffc939fb83d2a5debe7fc049a2d53b6c9e1aafcb083b7eaa5b031047370616d", 9, false},
	{1, "010982f0a8c7bdeaa5b031b6746706feadd2c0e67e08c8139c6ffc939fb83d2a5debe7fc049a2d53b6c9e10008666f7220676f6f64", 10, false},
	{1, "010a82f0a8c7bdeaa5b031b6746706feadd2c0e67e08c8139c6ffc939fb83d2a5debe7fc049a2d53b6c9e1", 11, false},

	// Version 2: origin times stored relative to the local time.
	{2, "020182f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de705416c696365020d31302e302e302e313a383038300a5b3a3a315d3a3830383001", 0, false},
	{2, "020282f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de702169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e103426f62010d31302e302e302e323a38303831c72a1137665cb7122e90ef4d240b1b705507430aeccf088ca3a740df0d114557054361726f6c00", 1, false},
	{2, "020382f0a8c7bdeaa5b031169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e10d31302e302e302e323a3830383101", 2, false},
	{2, "020482f0a8c7bdeaa5b031169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e11e726561643a20636f6e6e656374696f6e2072657365742062792070656572", 3, false},
	{2, "020582f0a8c7bdeaa5b031c72a1137665cb7122e90ef4d240b1b705507430aeccf088ca3a740df0d1145570d31302e302e302e333a38303832156469616c207463703a20692f6f2074696d656f7574", 4, false},
	{2, "020682f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de72a81a0d8fab98d9b2005416c6963651168656c6c6f2c2077c3b6726c6420e29c93406465350ebb19efef50eafa91fd22f80a943834edb1509d7e6c8f3b8c6113deae7ebf1259d8055bd9f2cb766b939e238dee0c265835002f38019276c08ec61b06", 5, false},
	{2, "020782f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de7169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e105416c696365086a75737420796f75aafcb083b7eaa5b0310c", 6, false},
	{2, "020b82f0a8c7bdeaa5b031169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e10c", 7, false},
	{2, "020882f0a8c7bdeaa5b031169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e1078198a5ddbe8f9b2006526f6265727440692aae4240d0235fc6c8cdf7aea14de1ae7595b27cab3aaf93ccd537e4971863e4c393c289849be791ec32ed40831f682a60b8365e99b06bd0209f3acc9e2804", 8, false},
	{2, "020982f0a8c7bdeaa5b031b6746706feadd2c0e67e08c8139c6ffc939fb83d2a5debe7fc049a2d53b6c9e1aafcb083b7eaa5b031047370616d", 9, false},
	{2, "020982f0a8c7bdeaa5b031b6746706feadd2c0e67e08c8139c6ffc939fb83d2a5debe7fc049a2d53b6c9e10008666f7220676f6f64", 10, false},
	{2, "020a82f0a8c7bdeaa5b031b6746706feadd2c0e67e08c8139c6ffc939fb83d2a5debe7fc049a2d53b6c9e1", 11, false},
	// SEALED and ACK came in version 2.
	{2, "020c82f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de70981a8d6b90705416c696365169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e104b0b0b0b0030e0e0e025151", 12, false},
	{2, "020d82f0a8c7bdeaa5b031169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e10481a8d6b9071597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de709025151", 13, false},

	// Version 3: PEERS carries the IDs of the rows it evicted.
	{3, "030182f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de705416c696365020d31302e302e302e313a383038300a5b3a3a315d3a3830383001", 0, false},
	{3, "030282f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de702169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e103426f62010d31302e302e302e323a38303831c72a1137665cb7122e90ef4d240b1b705507430aeccf088ca3a740df0d114557054361726f6c0000", 1, false},
	{3, "030382f0a8c7bdeaa5b031169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e10d31302e302e302e323a3830383101", 2, false},
	{3, "030482f0a8c7bdeaa5b031169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e11e726561643a20636f6e6e656374696f6e2072657365742062792070656572", 3, false},
	{3, "030582f0a8c7bdeaa5b031c72a1137665cb7122e90ef4d240b1b705507430aeccf088ca3a740df0d1145570d31302e302e302e333a38303832156469616c207463703a20692f6f2074696d656f7574", 4, false},
	{3, "030682f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de72a81a0d8fab98d9b2005416c6963651168656c6c6f2c2077c3b6726c6420e29c93406465350ebb19efef50eafa91fd22f80a943834edb1509d7e6c8f3b8c6113deae7ebf1259d8055bd9f2cb766b939e238dee0c265835002f38019276c08ec61b06", 5, false},
	{3, "030782f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de7169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e105416c696365086a75737420796f75aafcb083b7eaa5b0310c", 6, false},
	{3, "030b82f0a8c7bdeaa5b031169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e10c", 7, false},
	{3, "030882f0a8c7bdeaa5b031169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e1078198a5ddbe8f9b2006526f6265727440692aae4240d0235fc6c8cdf7aea14de1ae7595b27cab3aaf93ccd537e4971863e4c393c289849be791ec32ed40831f682a60b8365e99b06bd0209f3acc9e2804", 8, false},
	{3, "030982f0a8c7bdeaa5b031b6746706feadd2c0e67e08c8139c6ffc939fb83d2a5debe7fc049a2d53b6c9e1aafcb083b7eaa5b031047370616d", 9, false},
	{3, "030982f0a8c7bdeaa5b031b6746706feadd2c0e67e08c8139c6ffc939fb83d2a5debe7fc049a2d53b6c9e10008666f7220676f6f64", 10, false},
	{3, "030a82f0a8c7bdeaa5b031b6746706feadd2c0e67e08c8139c6ffc939fb83d2a5debe7fc049a2d53b6c9e1", 11, false},
	{3, "030c82f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de70981a8d6b90705416c696365169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e104b0b0b0b0030e0e0e025151", 12, false},
	{3, "030d82f0a8c7bdeaa5b031169a1f3bd96511929962c36492d0b0a9f819f42dcdd16461206a5989353139e10481a8d6b9071597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de709025151", 13, false},
	{3, "030282f0a8c7bdeaa5b0311597b35fce1cb97ccc44b56f32fd95cb425b16405c27c0dd33b7e0af74940de701a389e9e50f56334483a2c70cf840998568e7fca2f0336c8023e959af0b8afc0d0444617665010d31302e302e302e343a3830383302c72a1137665cb7122e90ef4d240b1b705507430aeccf088ca3a740df0d114557b6746706feadd2c0e67e08c8139c6ffc939fb83d2a5debe7fc049a2d53b6c9e1", 14, false},
}

// goldenBodies are everyBody() and, from codec version 3 on, a PEERS that
// evicted rows.
func goldenBodies() []eventlog.Body {
	return append(everyBody(), eventlog.Peers{From: idOf(originKey("alice")),
		Peers:   []eventlog.PeerInfo{{ID: peerID("dave"), Name: "Dave", Addrs: []string{"10.0.0.4:8083"}}},
		Evicted: []eventlog.NodeID{peerID("carol"), peerID("mallory")},
	})
}

// TestGoldenRecordsOfEveryVersionDecode: what every release stored still
// reads back as the same event.
func TestGoldenRecordsOfEveryVersionDecode(t *testing.T) {
	bodies := goldenBodies()
	for _, g := range golden {
		want := bodies[g.body]
		if g.noRef {
			p := want.(eventlog.Private)
			p.Ref = 0
			want = p
		}
		t.Run(want.Type().String(), func(t *testing.T) {
			data, err := hex.DecodeString(g.hex)
			if err != nil {
				t.Fatal(err)
			}
			e, err := eventlog.Decode(1, data)
			if err != nil {
				t.Fatalf("version %d record no longer decodes: %v", g.version, err)
			}
			if !e.Time.Equal(goldenTime) || !reflect.DeepEqual(e.Body, want) {
				t.Errorf("version %d record decodes as %#v at %v,\nwant %#v at %v", g.version, e.Body, e.Time, want, goldenTime)
			}
		})
	}
}

// TestTheEncoderWritesTheNewestGoldenRecords: a change to the stored
// layout fails here, and must come as a new codec version with its own
// golden records.
func TestTheEncoderWritesTheNewestGoldenRecords(t *testing.T) {
	bodies := goldenBodies()
	newest := 0
	for _, g := range golden {
		newest = max(newest, g.version)
	}
	covered := map[eventlog.Type]map[int]bool{}
	for _, g := range golden {
		typ := bodies[g.body].Type()
		if covered[typ] == nil {
			covered[typ] = map[int]bool{}
		}
		covered[typ][g.version] = true
		if g.version != newest {
			continue
		}
		got := encodeEvent(t, eventlog.Event{Time: goldenTime, Body: bodies[g.body]})
		if want, _ := hex.DecodeString(g.hex); !bytes.Equal(got, want) {
			t.Errorf("%v encodes as\n%x\nthe version %d record is\n%x", typ, got, newest, want)
		}
	}
	// Every type this package defines has a record in every version (a
	// type added later starts in the version current when it came).
	for typ := eventlog.Type(1); !strings.HasPrefix(typ.String(), "TYPE("); typ++ {
		if !covered[typ][newest] {
			t.Errorf("no golden record of %v in codec version %d", typ, newest)
		}
	}
}
