package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/internal/e2e"
)

// homeRules make a namespace behave like a home router: it masquerades
// what its home sends out of the wan side, and silently drops every
// packet from the wan that no connection from inside asked for, both to
// the home and to the router itself.
const homeRules = `
table ip nat {
	chain postrouting {
		type nat hook postrouting priority 100;
		oifname "wan0" masquerade
	}
}
table inet filter {
	chain forward {
		type filter hook forward priority 0; policy drop;
		iifname "lan0" accept
		ct state established,related accept
	}
	chain input {
		type filter hook input priority 0; policy drop;
		iifname "lo" accept
		iifname "lan0" accept
		ct state established,related accept
	}
}
`

// randomPortRules are homeRules with a masquerade that picks a random
// outside port for every connection, as some carrier-grade NATs do: a
// punch cannot predict the address, so no direct link can form.
var randomPortRules = strings.Replace(homeRules, "masquerade", "masquerade random", 1)

// natLab is a netnsLab (the public network, "the internet") with homes
// behind masquerading routers: home i's router is on the public network
// at routerAddr(i), its one host at 10.78.i.2 behind it.
type natLab struct {
	*netnsLab
	homes []string // namespace of each home's host
}

// newNATLab builds public hosts on the public network and homes behind
// routers, or skips the test when namespaces or nft are missing (with
// CI set, a missing nft fails it: .ci/run installs it).
func newNATLab(t *testing.T, public, homes int, rules string) *natLab {
	t.Helper()
	if testing.Short() {
		t.Skip("builds network namespaces")
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nft is missing: .ci/run installs nftables")
		}
		t.Skip("no nft (nftables): cannot build NAT routers")
	}
	lab := &natLab{netnsLab: newNetnsLab(t, public)}
	for h := range homes {
		router := fmt.Sprintf("%s-r%d", lab.hub, h)
		home := fmt.Sprintf("%s-h%d", lab.hub, h)
		for _, ns := range []string{router, home} {
			lab.ip("netns", "add", ns)
			t.Cleanup(func() { lab.deleteNamespace(ns) })
			lab.ip("-n", ns, "link", "set", "lo", "up")
		}
		wan := fmt.Sprintf("w%d", h)
		lab.ip("-n", lab.hub, "link", "add", wan, "type", "veth", "peer", "name", "wan0", "netns", router)
		lab.ip("-n", lab.hub, "link", "set", wan, "master", "br0")
		lab.ip("-n", lab.hub, "link", "set", wan, "up")
		lab.ip("-n", router, "addr", "add", lab.routerAddr(h)+"/24", "dev", "wan0")
		lab.ip("-n", router, "link", "set", "wan0", "up")
		lab.ip("-n", router, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", home)
		lab.ip("-n", router, "addr", "add", fmt.Sprintf("10.78.%d.1/24", h), "dev", "lan0")
		lab.ip("-n", router, "link", "set", "lan0", "up")
		lab.ip("-n", home, "addr", "add", fmt.Sprintf("10.78.%d.2/24", h), "dev", "eth0")
		lab.ip("-n", home, "link", "set", "eth0", "up")
		lab.ip("-n", home, "route", "add", "default", "via", fmt.Sprintf("10.78.%d.1", h))
		mustRun(t, lab.ipCmd, "netns", "exec", router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
		cmd := exec.Command(lab.ipCmd, "netns", "exec", router, nft, "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft in %s: %v: %s", router, err, out)
		}
		lab.homes = append(lab.homes, home)
	}
	return lab
}

// routerAddr is home h's router on the public network.
func (lab *natLab) routerAddr(h int) string { return fmt.Sprintf("%s%d", netnsSubnet, 11+h) }

// startHome runs a first-time node named name in home h, on netnsPort.
func (lab *natLab) startHome(h int, name string, extra ...string) *e2e.Node {
	lab.t.Helper()
	return lab.startIn(lab.homes[h], nil, name, extra...)
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func TestNodesBehindNATTakePartAndTheirAddressesAreNotHandedOut(t *testing.T) {
	t.Parallel()
	lab := newNATLab(t, 1, 2, homeRules)
	pub := lab.start(0, "Pub")
	hana := lab.startHome(0, "Hana", "--peer", lab.nodeAddr(0))
	hanaSeen := lab.routerAddr(0) + ":" + netnsPort
	hana.WaitLine("*** peers see you at " + hanaSeen + " but cannot dial you there")
	kofi := lab.startHome(1, "Kofi", "--peer", lab.nodeAddr(0))
	kofiSeen := lab.routerAddr(1) + ":" + netnsPort
	kofi.WaitLine("*** peers see you at " + kofiSeen + " but cannot dial you there")

	if l := hana.Command("/l"); !slices.Contains(l, "*** peers see you at "+hanaSeen+" but cannot dial you there (NAT or firewall): you take part through the peers you dial") {
		t.Errorf("Hana's /l does not say how peers see her: %q", l)
	}
	hana.Send("hello from behind one NAT")
	kofi.WaitLine(chatLine("Hana", "hello from behind one NAT"))
	kofi.Send("and from behind another")
	hana.WaitLine(chatLine("Kofi", "and from behind another"))

	// Neither home's router address goes anywhere: no node offers it,
	// not even a home that reached the other directly through a punch.
	for _, n := range []*e2e.Node{pub, hana, kofi} {
		payload := strings.Join(n.Command("/p"), "\n")
		for _, seen := range []string{hanaSeen, kofiSeen} {
			if strings.Contains(payload, seen) {
				t.Errorf("%s's PEERS offers %s, which nobody can dial:\n%s", n.Name, seen, payload)
			}
		}
	}

	for _, n := range []*e2e.Node{hana, kofi, pub} {
		n.Quit()
	}
}

func TestAReachableNodeLearnsThatPeersCanDialIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds network namespaces")
	}
	t.Parallel()
	lab := newNetnsLab(t, 2)
	alice := lab.start(0, "Alice")
	bob := lab.start(1, "Bob", "--peer", lab.nodeAddr(0))
	bob.WaitLine("*** peers see you at " + lab.nodeAddr(1) + " and can dial you there")
	payload := strings.Join(alice.Command("/p"), "\n")
	if !strings.Contains(payload, lab.nodeAddr(1)) {
		t.Errorf("Alice's PEERS lacks Bob's address %s, which a dial-back proved:\n%s", lab.nodeAddr(1), payload)
	}
	alice.Quit()
	bob.Quit()
}

// punchWithin is how soon after both homes are up they must be connected
// directly.
const punchWithin = 10 * time.Second

func TestTwoHomesBehindNATConnectDirectlyAndKeepChattingWithoutThePublicNode(t *testing.T) {
	t.Parallel()
	lab := newNATLab(t, 1, 2, homeRules)
	pub := lab.start(0, "Pub")
	hana := lab.startHome(0, "Hana", "--peer", lab.nodeAddr(0))
	kofi := lab.startHome(1, "Kofi", "--peer", lab.nodeAddr(0))
	bothUp := time.Now()
	e2e.WaitFor(t, e2e.Scaled(punchWithin), func() bool {
		users, _ := hana.Users()
		for _, u := range users {
			if u.ShortID == kofi.ShortID {
				return u.Addr == lab.routerAddr(1)+":"+netnsPort
			}
		}
		return false
	}, "Hana to list Kofi, connected directly through both routers")
	t.Logf("direct connection %v after both homes started", time.Since(bothUp).Round(10*time.Millisecond))

	pub.Quit()
	hana.WaitLine("*** Pub left")
	hana.Send("still here without Pub")
	kofi.WaitLine(chatLine("Hana", "still here without Pub"))
	kofi.Send("me too")
	hana.WaitLine(chatLine("Kofi", "me too"))
	hana.Quit()
	kofi.Quit()
}

func TestWhenRoutersDefeatPunchingHomesChatMessageAndCatchUpThroughThePublicNode(t *testing.T) {
	t.Parallel()
	lab := newNATLab(t, 1, 2, randomPortRules)
	pub := lab.start(0, "Pub")
	hana := lab.startHome(0, "Hana", "--peer", lab.nodeAddr(0))
	kofi := lab.startHome(1, "Kofi", "--peer", lab.nodeAddr(0))
	hana.WaitLine("*** no direct connection to Kofi")
	kofi.WaitLine("*** no direct connection to Hana")

	hana.Send("through Pub then")
	kofi.WaitLine(chatLine("Hana", "through Pub then"))
	kofi.Send("fine by me")
	hana.WaitLine(chatLine("Kofi", "fine by me"))
	for _, n := range []*e2e.Node{hana, kofi} {
		for _, u := range n.WaitUsers(pub) {
			if u.ShortID != pub.ShortID {
				t.Errorf("%s is connected to %s although the routers allow no direct link", n.Name, u.Name)
			}
		}
	}

	// Private messages go through Pub too, sealed: Pub never shows them.
	waitKnows(t, hana, "Kofi")
	waitKnows(t, kofi, "Hana")
	sendPrivate(t, hana, kofi, "only for Kofi")
	sendPrivate(t, kofi, hana, "only for Hana")
	hana.WaitLine(deliveredLine("Kofi", "only for Kofi"))
	kofi.WaitLine(deliveredLine("Hana", "only for Hana"))

	// Offline: Kofi goes, Hana says things and goes, Kofi comes back and
	// gets everything from the public node alone.
	kofi.Quit()
	pub.WaitLine("*** Kofi left")
	lines := sayLines(hana, "away", 3)
	const later = "for when you are back"
	hana.Send("/msg Kofi " + later)
	e2e.WaitFor(t, e2e.Patience, func() bool { return eventTypes(t, pub.DataDir)["SEALED"] == 3 },
		"the public node to hold Hana's message for Kofi")
	for _, l := range lines {
		pub.WaitLine(l)
	}
	hana.Quit()
	pub.WaitLine("*** Hana left")
	kofi = e2e.Binary(lab.ipCmd).StartListening(t, "netns", "exec", lab.homes[1], string(p2pchat), "--data-dir", kofi.DataDir)
	for _, l := range lines {
		kofi.WaitLine(l)
	}
	kofi.WaitLine(privateLine("Hana", later))
	for _, text := range []string{"only for Kofi", "only for Hana", later} {
		if c := pub.CountLines(text); c != 0 {
			t.Errorf("the public node shows the private %q %d times, want never", text, c)
		}
	}
	for _, n := range []*e2e.Node{pub, kofi} {
		n.Quit()
	}
}
