package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

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
func newNATLab(t *testing.T, public, homes int) *natLab {
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
		cmd.Stdin = strings.NewReader(homeRules)
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
	args := []string{"netns", "exec", lab.homes[h], string(p2pchat),
		"--port", netnsPort, "--uname", name, "--data-dir", newDataDir(lab.t)}
	return e2e.Binary(lab.ipCmd).StartListening(lab.t, append(args, extra...)...)
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func TestNodesBehindNATTakePartAndTheirAddressesAreNotHandedOut(t *testing.T) {
	t.Parallel()
	lab := newNATLab(t, 1, 2)
	pub := lab.start(0, "Pub")
	hana := lab.startHome(0, "Hana", "--peer", lab.nodeAddr(0))
	hanaSeen := lab.routerAddr(0) + ":" + netnsPort
	hana.WaitLine("*** peers see you at " + hanaSeen + " but cannot dial you there")
	kofi := lab.startHome(1, "Kofi", "--peer", lab.nodeAddr(0))
	kofiSeen := lab.routerAddr(1) + ":" + netnsPort
	kofi.WaitLine("*** peers see you at " + kofiSeen + " but cannot dial you there")

	hana.Send("hello from behind one NAT")
	kofi.WaitLine(chatLine("Hana", "hello from behind one NAT"))
	kofi.Send("and from behind another")
	hana.WaitLine(chatLine("Kofi", "and from behind another"))

	// Neither home's router address went anywhere: Pub does not offer
	// it, and neither home learned the other's.
	payload := strings.Join(pub.Command("/p"), "\n")
	for _, seen := range []string{hanaSeen, kofiSeen} {
		if strings.Contains(payload, seen) {
			t.Errorf("Pub's PEERS offers %s, which nobody can dial:\n%s", seen, payload)
		}
	}
	for _, n := range []*e2e.Node{hana, kofi} {
		res := p2pchat.Run(t, "peers", "--json", "--data-dir", n.DataDir)
		if res.Code != 0 {
			t.Fatalf("peers of %s: exit %d: %s", n.Name, res.Code, res.Stderr)
		}
		for _, seen := range []string{hanaSeen, kofiSeen} {
			if strings.Contains(res.Stdout, seen) {
				t.Errorf("%s's peer table holds %s, an address nobody can dial:\n%s", n.Name, seen, res.Stdout)
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
