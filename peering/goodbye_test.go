package peering

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/p2pchat/p2pchat/peering/wire"
)

func TestAGoodbyeReasonLosesControlCharactersAndIsBounded(t *testing.T) {
	payload, err := json.Marshal(wire.GoodbyeMsg{Reason: "bye\n\x00ok\n\x1b[2J" + strings.Repeat("é", 1000)})
	if err != nil {
		t.Fatal(err)
	}
	var bye errGoodbye
	if !errors.As(goodbyeFrom(payload), &bye) {
		t.Fatal("goodbyeFrom does not return an errGoodbye")
	}
	if strings.ContainsFunc(bye.reason, func(r rune) bool { return r < 0x20 || r == utf8.RuneError }) || len(bye.reason) > maxGoodbyeReason {
		t.Errorf("reason %q: want no control characters and at most %d bytes", bye.reason, maxGoodbyeReason)
	}
	if !strings.HasPrefix(bye.reason, "byeok[2J") {
		t.Errorf("reason %q lost more than its control characters", bye.reason)
	}
}
