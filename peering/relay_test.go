package peering

import (
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/p2pchat/p2pchat/peering/wire/wiretest"
)

func TestARelayedLineIsTheCanonicalEncodingNotTheBytesReceived(t *testing.T) {
	chat := wiretest.Chat(t, "pay Bob 10")
	canonical, err := wire.EncodeFrame(wire.FrameChat, wire.ChatFromEvent(chat), 0)
	if err != nil {
		t.Fatal(err)
	}
	payload := canonical[len(wire.FrameChat)+1 : len(canonical)-1]
	// Padding by whitespace and escapes is valid JSON and not refused,
	// but it must not travel further.
	padded := strings.Replace(string(payload), `{"origin"`, "{"+strings.Repeat(" ", 60000)+`"\u006frigin"`, 1)
	body, err := wire.DecodeSigned(wire.FrameChat, []byte(padded))
	if err != nil {
		t.Fatal(err)
	}
	if err := eventlog.VerifySigned(body); err != nil {
		t.Fatal(err)
	}
	relayed, err := wire.SignedFrame(body, 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(relayed) != string(canonical) {
		t.Errorf("relayed %d bytes %.80q..., want the canonical %d bytes", len(relayed), relayed, len(canonical))
	}
}
