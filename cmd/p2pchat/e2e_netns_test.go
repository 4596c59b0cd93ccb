package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/internal/e2e"
)

// netnsLab is a small private network made of Linux network namespaces:
// a hub namespace holding a bridge, and one namespace per host, each with
// a veth pair to the bridge and an address in 10.77.0.0/24. Nothing is
// created outside these namespaces, so the test touches neither the
// machine's interfaces nor its routes, and two runs side by side do not
// meet: every run names its namespaces anew.
type netnsLab struct {
	t     *testing.T
	ipCmd string
	hub   string
	hosts []string // namespace of each host
}

// netnsSubnet is the private range used inside the namespaces.
const netnsSubnet = "10.77.0."

// netnsPort is where each node listens in its own namespace.
const netnsPort = "7000"

// newNetnsLab builds the hub and count hosts, or skips the test when
// namespaces cannot be made here. Every namespace it made is deleted when
// the test ends, whatever happened.
func newNetnsLab(t *testing.T, count int) *netnsLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root: run as root to test across namespaces")
	}
	ipCmd, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip command (iproute2): cannot make network namespaces")
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	prefix := "p2pc-" + hex.EncodeToString(b[:])
	lab := &netnsLab{t: t, ipCmd: ipCmd, hub: prefix + "-hub"}
	if out, err := exec.Command(ipCmd, "netns", "add", lab.hub).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace (ip netns add: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { lab.deleteNamespace(lab.hub) })
	lab.ip("-n", lab.hub, "link", "set", "lo", "up")
	lab.ip("-n", lab.hub, "link", "add", "br0", "type", "bridge")
	lab.ip("-n", lab.hub, "link", "set", "br0", "up")
	for i := range count {
		ns := fmt.Sprintf("%s-%c", prefix, 'a'+i)
		lab.ip("netns", "add", ns)
		t.Cleanup(func() { lab.deleteNamespace(ns) })
		lab.hosts = append(lab.hosts, ns)
		veth := fmt.Sprintf("v%d", i)
		lab.ip("-n", lab.hub, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		lab.ip("-n", lab.hub, "link", "set", veth, "master", "br0")
		lab.ip("-n", lab.hub, "link", "set", veth, "up")
		lab.ip("-n", ns, "addr", "add", lab.addr(i)+"/24", "dev", "eth0")
		lab.ip("-n", ns, "link", "set", "eth0", "up")
		lab.ip("-n", ns, "link", "set", "lo", "up")
	}
	return lab
}

// addr is host i's address.
func (lab *netnsLab) addr(i int) string { return fmt.Sprintf("%s%d", netnsSubnet, i+1) }

// nodeAddr is where host i's node listens.
func (lab *netnsLab) nodeAddr(i int) string { return lab.addr(i) + ":" + netnsPort }

// ip runs the ip command and fails the test if it fails.
func (lab *netnsLab) ip(args ...string) {
	lab.t.Helper()
	if out, err := exec.Command(lab.ipCmd, args...).CombinedOutput(); err != nil {
		lab.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

func (lab *netnsLab) deleteNamespace(ns string) {
	if out, err := exec.Command(lab.ipCmd, "netns", "del", ns).CombinedOutput(); err != nil {
		lab.t.Errorf("ip netns del %s: %v: %s", ns, err, strings.TrimSpace(string(out)))
	}
}

// start runs a first-time node named name in host i's namespace, on
// netnsPort, and waits until it listens.
func (lab *netnsLab) start(i int, name string, extra ...string) *e2e.Node {
	lab.t.Helper()
	return lab.startIn(lab.hosts[i], nil, name, extra...)
}

// startIn runs a first-time node named name in namespace ns, on
// netnsPort, behind the command words wrap (env settings, say), and waits
// until it listens.
func (lab *netnsLab) startIn(ns string, wrap []string, name string, extra ...string) *e2e.Node {
	lab.t.Helper()
	args := append([]string{"netns", "exec", ns}, wrap...)
	args = append(args, string(p2pchat), "--port", netnsPort, "--uname", name, "--data-dir", newDataDir(lab.t))
	// ip netns exec replaces itself with the node (and env does too), so
	// the process the harness watches, feeds and kills is the node.
	return e2e.Binary(lab.ipCmd).StartListening(lab.t, append(args, extra...)...)
}

func TestThreeNodesInSeparateNetnsFormAMeshAndChat(t *testing.T) {
	if testing.Short() {
		t.Skip("builds network namespaces")
	}
	t.Parallel()
	lab := newNetnsLab(t, 3)
	alice := lab.start(0, "Alice")
	bob := lab.start(1, "Bob", "--peer", lab.nodeAddr(0))
	carol := lab.start(2, "Carol", "--peer", lab.nodeAddr(1))

	// Carol hears of Alice only through Bob's PEERS, which carries the
	// address Bob dialed; Alice learns where Carol listens from the
	// address Carol's connection comes from and the port in her JOIN.
	waitMesh(t, alice, bob, carol)
	want := map[string]string{"Alice": lab.nodeAddr(0), "Bob": lab.nodeAddr(1), "Carol": lab.nodeAddr(2)}
	for _, n := range []*e2e.Node{alice, bob, carol} {
		users, _ := n.Users()
		for _, u := range users {
			if u.Addr != want[u.Name] {
				t.Errorf("%s lists %s at %q, want %q", n.Name, u.Name, u.Addr, want[u.Name])
			}
		}
	}

	alice.Send("hello from another host")
	carol.WaitLine(chatLine("Alice", "hello from another host"))
	carol.Send("hello back")
	alice.WaitLine(chatLine("Carol", "hello back"))
	bob.WaitLine(chatLine("Carol", "hello back"))
	fence(t, "netns", alice, bob, carol)
	for _, n := range []*e2e.Node{alice, bob, carol} {
		checkOnce(t, n, []string{chatLine("Alice", "hello from another host"), chatLine("Carol", "hello back")})
	}
	for _, n := range []*e2e.Node{alice, bob, carol} {
		n.Quit()
	}
}
