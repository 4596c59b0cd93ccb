package main

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/internal/e2e"
)

// natHome is a home network behind a masquerading router: the router is a
// host of a netnsLab, on the lab's public bridge, and the home host sits
// behind it on a private /24 of its own. Nothing outside can dial the home
// host; the router refuses connections to its own public address.
type natHome struct {
	ns   string // the home host's namespace
	addr string // its private address
}

// natLan is the private subnet of home i.
func natLan(i int) string { return fmt.Sprintf("192.168.%d.", 10+i) }

// addHome puts a home host behind lab host router, with masquerading
// (nftables) on the router's public side.
func (lab *netnsLab) addHome(router int) natHome {
	lab.t.Helper()
	nft, err := exec.LookPath("nft")
	if err != nil {
		lab.t.Skip("no nft command (nftables): cannot build a NAT router")
	}
	r := lab.hosts[router]
	home := natHome{ns: r + "-home", addr: natLan(router) + "2"}
	lab.ip("netns", "add", home.ns)
	lab.t.Cleanup(func() { lab.deleteNamespace(home.ns) })
	lab.ip("-n", r, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", home.ns)
	lab.ip("-n", r, "addr", "add", natLan(router)+"1/24", "dev", "lan0")
	lab.ip("-n", r, "link", "set", "lan0", "up")
	lab.ip("-n", home.ns, "addr", "add", home.addr+"/24", "dev", "eth0")
	lab.ip("-n", home.ns, "link", "set", "eth0", "up")
	lab.ip("-n", home.ns, "link", "set", "lo", "up")
	lab.ip("-n", home.ns, "route", "add", "default", "via", natLan(router)+"1")
	lab.inNamespace(r, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	lab.inNamespace(r, nft, "add table ip nat; "+
		"add chain ip nat post { type nat hook postrouting priority 100 ; } ; "+
		"add rule ip nat post oifname eth0 masquerade")
	return home
}

// inNamespace runs a command in namespace ns and fails the test if it fails.
func (lab *netnsLab) inNamespace(ns string, cmd ...string) {
	lab.t.Helper()
	args := append([]string{"netns", "exec", ns}, cmd...)
	if out, err := exec.Command(lab.ipCmd, args...).CombinedOutput(); err != nil {
		lab.t.Fatalf("in %s: %s: %v: %s", ns, strings.Join(cmd, " "), err, strings.TrimSpace(string(out)))
	}
}

// startIn runs a node in namespace ns with extra arguments, and waits until
// it listens.
func (lab *netnsLab) startIn(ns string, extra ...string) *e2e.Node {
	lab.t.Helper()
	args := append([]string{"netns", "exec", ns, string(p2pchat)}, extra...)
	return e2e.Binary(lab.ipCmd).StartListening(lab.t, args...)
}

// userAddr is the address users lists for name.
func userAddr(users []e2e.User, name string) string {
	for _, u := range users {
		if u.Name == name {
			return u.Addr
		}
	}
	return ""
}

func TestTwoHomesBehindNATChatAndMessageThroughAPublicNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds network namespaces")
	}
	t.Parallel()
	// Host 0 is the public node; hosts 1 and 2 are the routers of Hana's
	// and Kofi's homes.
	lab := newNetnsLab(t, 3)
	hanaHome, kofiHome := lab.addHome(1), lab.addHome(2)
	pub := lab.start(0, "Pub")
	hana := lab.startIn(hanaHome.ns, "--port", netnsPort, "--uname", "Hana", "--data-dir", newDataDir(t), "--peer", lab.nodeAddr(0))
	kofi := lab.startIn(kofiHome.ns, "--port", netnsPort, "--uname", "Kofi", "--data-dir", newDataDir(t), "--peer", lab.nodeAddr(0))
	pub.WaitUsers(hana, kofi)
	// Pub dials each back at the address it sees, which the router
	// refuses, and tells them so; it names each to the other without
	// an address, so neither wastes dials on the other's router.
	hana.WaitLine("Pub sees this node at " + lab.nodeAddr(1) + " but cannot dial it there")
	kofi.WaitLine("Pub sees this node at " + lab.nodeAddr(2) + " but cannot dial it there")
	status := "*** peers see this node at " + lab.nodeAddr(1) + " but cannot dial it there"
	if out := hana.Command("/l"); !slices.ContainsFunc(out, func(l string) bool { return strings.HasPrefix(l, status) }) {
		t.Errorf("Hana's /l says %q, want a line %q", out, status)
	}
	waitKnows(t, hana, "Kofi")
	waitKnows(t, kofi, "Hana")

	hana.Send("hello from behind a router")
	kofi.WaitLine(chatLine("Hana", "hello from behind a router"))
	kofi.Send("same here")
	hana.WaitLine(chatLine("Kofi", "same here"))
	sendPrivate(t, hana, kofi, "only for Kofi")
	sendPrivate(t, kofi, hana, "only for Hana")
	hana.WaitLine(deliveredLine("Kofi", "only for Kofi"))
	kofi.WaitLine(deliveredLine("Hana", "only for Hana"))
	// The routers are in the way: all of it went through Pub.
	for _, n := range []*e2e.Node{hana, kofi} {
		if users, _ := n.Users(); len(users) != 1 || users[0].Name != "Pub" {
			t.Fatalf("%s lists %v, want only Pub: the homes are not behind NAT", n.Name, users)
		}
	}
	if users, _ := pub.Users(); !strings.HasPrefix(userAddr(users, "Hana"), lab.addr(1)+":") {
		t.Errorf("Pub lists Hana at %q, want her router's address %s", userAddr(users, "Hana"), lab.addr(1))
	}

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
	kofi = lab.startIn(kofiHome.ns, "--data-dir", kofi.DataDir)
	for _, l := range lines {
		kofi.WaitLine(l)
	}
	kofi.WaitLine(privateLine("Hana", later))
	if c := pub.CountLines(later); c != 0 {
		t.Errorf("the public node shows Hana's message to Kofi %d times, want never", c)
	}
	for _, n := range []*e2e.Node{pub, kofi} {
		n.Quit()
	}
	for _, n := range []*e2e.Node{hana, kofi} {
		for _, e := range jsonLines(t, "events", "--data-dir", n.DataDir, "--json") {
			if e["type"] == "DIAL_FAILED" {
				t.Errorf("%s dialed %v in vain", n.Name, e["addr"])
			}
		}
	}
}
