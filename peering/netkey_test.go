package peering

import (
	"bytes"
	"context"
	"crypto/hmac"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/peering/wire"
	"github.com/p2pchat/p2pchat/peering/wire/wiretest"
)

var (
	netkeyTestKey   = []byte("correct horse battery staple")
	netkeyTestOther = []byte("another network, another key")
)

func netkeyTestWith(key []byte) func(*Config) {
	return func(cfg *Config) {
		cfg.NetworkKey = key
		cfg.LogEvery = time.Nanosecond // every refusal logged, to check them
	}
}

func TestNodesWithTheSameNetworkKeyConnectAndChat(t *testing.T) {
	a := netTestStart(t, "Alice", netkeyTestWith(netkeyTestKey))
	b := netTestStart(t, "Bob", func(cfg *Config) {
		netkeyTestWith(netkeyTestKey)(cfg)
		netTestSeeds(a)(cfg)
	})
	netTestWaitFor(t, 10*time.Second, "Alice and Bob connected", func() bool {
		return a.connectedTo(b) && b.connectedTo(a)
	})
	a.say(t, "private hello")
	netTestWaitFor(t, 10*time.Second, "Bob shows Alice's line", func() bool { return b.display.saw("private hello") })
	b.say(t, "private answer")
	netTestWaitFor(t, 10*time.Second, "Alice shows Bob's line", func() bool { return a.display.saw("private answer") })
}

func TestNodesWithoutTheNetworkKeyNeverJoinAKeyedNetwork(t *testing.T) {
	a := netTestStart(t, "Alice", netkeyTestWith(netkeyTestKey))
	b := netTestStart(t, "Bob", func(cfg *Config) {
		netkeyTestWith(netkeyTestKey)(cfg)
		netTestSeeds(a)(cfg)
	})
	wrong := netTestStart(t, "Eve", func(cfg *Config) {
		netkeyTestWith(netkeyTestOther)(cfg)
		netTestSeeds(a, b)(cfg)
	})
	keyless := netTestStart(t, "Oscar", func(cfg *Config) {
		netkeyTestWith(nil)(cfg)
		netTestSeeds(a, b)(cfg)
	})
	// The outsiders are dialed too, so both directions are refused.
	if err := a.Connect(context.Background(), wrong.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := a.Connect(context.Background(), keyless.Addr().String()); err != nil {
		t.Fatal(err)
	}
	netTestWaitFor(t, 10*time.Second, "Alice and Bob connected", func() bool {
		return a.connectedTo(b) && b.connectedTo(a)
	})
	netTestWaitFor(t, 10*time.Second, "every side logged why it refused", func() bool {
		return a.logs.has("handshake failed", "wrong network key") &&
			a.logs.has("handshake failed", "peer lacks the network key") &&
			b.logs.has("handshake failed", "wrong network key") &&
			b.logs.has("handshake failed", "peer lacks the network key") &&
			wrong.logs.has("handshake failed", "wrong network key") &&
			keyless.logs.has("handshake failed", "requires a network key")
	})

	wrong.say(t, "let me in")
	keyless.say(t, "me too")
	a.say(t, "members only")
	netTestWaitFor(t, 10*time.Second, "Bob shows Alice's line", func() bool { return b.display.saw("members only") })

	for _, insider := range []*netTestNode{a, b} {
		for _, outsider := range []*netTestNode{wrong, keyless} {
			if insider.knows(t, outsider.ID()) {
				t.Errorf("%s stored %s in its peer table", insider.Name(), outsider.Name())
			}
			if insider.connectedTo(outsider) {
				t.Errorf("%s is connected to %s", insider.Name(), outsider.Name())
			}
			if outsider.knows(t, insider.ID()) {
				t.Errorf("%s learned of %s", outsider.Name(), insider.Name())
			}
		}
		if insider.display.saw("let me in") || insider.display.saw("me too") {
			t.Errorf("%s shows an outsider's line", insider.Name())
		}
	}
	if wrong.display.saw("members only") || keyless.display.saw("members only") {
		t.Error("an outsider shows a member's line")
	}
}

func TestNetworkKeyProofIsBoundToTheConnectionAndTheSender(t *testing.T) {
	srvKey, clientKey := wiretest.Key(1), wiretest.Key(2)
	server := ServerConfig(tlsTestCert(t, srvKey))
	client := tlsTestClientWith(tlsTestCert(t, clientKey))
	id := tlsTestID(t, clientKey)

	srv1, cli1 := tlsTestHandshake(t, server, client)
	_, cli2 := tlsTestHandshake(t, server, client)
	for _, side := range []tlsTestSide{srv1, cli1, cli2} {
		if side.err != nil {
			t.Fatal(side.err)
		}
	}
	proof := func(key []byte, side tlsTestSide, id [32]byte) []byte {
		t.Helper()
		p, err := networkProof(key, side.state, id)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	sent := proof(netkeyTestKey, cli1, id)
	if !hmac.Equal(sent, proof(netkeyTestKey, srv1, id)) {
		t.Fatal("the two ends of one connection compute different proofs")
	}
	if hmac.Equal(sent, proof(netkeyTestKey, cli2, id)) {
		t.Error("a proof from one connection is valid on another: it could be replayed")
	}
	if hmac.Equal(sent, proof(netkeyTestKey, srv1, tlsTestID(t, srvKey))) {
		t.Error("the proof does not depend on the sender: it could be reflected")
	}
	if hmac.Equal(sent, proof(netkeyTestOther, srv1, id)) {
		t.Error("the proof does not depend on the key")
	}
}

func TestNetworkKeyMustHaveSixteenBytes(t *testing.T) {
	for _, tc := range []struct {
		key []byte
		ok  bool
	}{
		{nil, true},
		{bytes.Repeat([]byte{'k'}, 15), false},
		{bytes.Repeat([]byte{'k'}, 16), true},
	} {
		err := CheckNetworkKey(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("CheckNetworkKey(%d bytes) = %v", len(tc.key), err)
		}
	}
	cfg := DefaultConfig()
	cfg.Name, cfg.Key, cfg.NetworkKey = "Alice", wiretest.Key(1), []byte("short")
	if _, err := New(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Errorf("New with a 5-byte network key: %v", err)
	}
}

func TestKeyedNodeSendsNothingButAuthToAPeerWithoutProof(t *testing.T) {
	a := netTestStart(t, "Alice", netkeyTestWith(netkeyTestKey))
	key, _ := netTestNewKey(t)
	p := netTestDialTLS(t, a.Addr().String(), key)
	if err := p.join("Mallory"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		typ, payload, err := p.next(5 * time.Second)
		if err != nil {
			break
		}
		got = append(got, typ+"|"+string(payload))
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], wire.FrameAuth+"|") || got[1] != `GOODBYE|{"reason":"network key mismatch"}` {
		t.Fatalf("a peer without the key got %q, want AUTH then GOODBYE", got)
	}
	if strings.Contains(strings.Join(got, ""), "Alice") {
		t.Error("the keyed node told its name")
	}
}
