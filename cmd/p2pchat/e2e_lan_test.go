package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/internal/e2e"
)

// lanFindWithin is how soon two nodes on one LAN, started without --peer,
// must list each other.
const lanFindWithin = 5 * time.Second

// newLAN is a netnsLab whose hosts have a default route on their LAN
// interface, as any host on a real LAN has: multicast needs a route.
func newLAN(t *testing.T, hosts int) *netnsLab {
	t.Helper()
	if testing.Short() {
		t.Skip("builds network namespaces")
	}
	lab := newNetnsLab(t, hosts)
	for _, ns := range lab.hosts {
		lab.ip("-n", ns, "route", "add", "default", "dev", "eth0")
	}
	return lab
}

// startLAN is lab.start with LAN discovery on, which the harness turns off
// for every other test.
func (lab *netnsLab) startLAN(i int, name string, extra ...string) *e2e.Node {
	lab.t.Helper()
	return lab.startIn(lab.hosts[i], []string{"env", "-u", "P2PCHAT_NO_MDNS"}, name, extra...)
}

// waitListed waits, at most lanFindWithin from since, until n lists
// exactly peers on /l.
func waitListed(t *testing.T, since time.Time, n *e2e.Node, peers ...*e2e.Node) {
	t.Helper()
	want := make([]string, len(peers))
	for i, p := range peers {
		want[i] = p.ShortID
	}
	slices.Sort(want)
	var got []string
	e2e.WaitFor(t, e2e.Scaled(lanFindWithin)-time.Since(since), func() bool {
		users, _ := n.Users()
		got = got[:0]
		for _, u := range users {
			got = append(got, u.ShortID)
		}
		slices.Sort(got)
		return slices.Equal(got, want)
	}, n.Name+" to list "+strings.Join(want, ", ")+" found on the LAN")
}

func TestNodesOnOneLANFindEachOtherWithoutPeer(t *testing.T) {
	t.Parallel()
	lab := newLAN(t, 2)
	alice := lab.startLAN(0, "Alice")
	bob := lab.startLAN(1, "Bob")
	since := time.Now()
	waitListed(t, since, alice, bob)
	waitListed(t, since, bob, alice)

	alice.Send("found you on the LAN")
	bob.WaitLine(chatLine("Alice", "found you on the LAN"))
	alice.Quit()
	bob.Quit()
}

func TestLANDiscoveryWithANetworkKeyFindsOnlyTheSameNetwork(t *testing.T) {
	t.Parallel()
	lab := newLAN(t, 3)
	dir := t.TempDir()
	ours, theirs := filepath.Join(dir, "ours.key"), filepath.Join(dir, "theirs.key")
	for file, key := range map[string]string{ours: "the key of our network", theirs: "another network's key"} {
		if err := os.WriteFile(file, []byte(key), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logFile := filepath.Join(dir, "carol.log")
	// Carol, of another network, starts first and logs the records she
	// ignores, so the test can see that she heard the others.
	carol := lab.startLAN(2, "Carol", "--network-key-file", theirs, "--log-level", "debug", "--log-file", logFile)
	alice := lab.startLAN(0, "Alice", "--network-key-file", ours)
	bob := lab.startLAN(1, "Bob", "--network-key-file", ours)
	since := time.Now()
	waitListed(t, since, alice, bob)
	waitListed(t, since, bob, alice)

	// Carol heard both and dialed neither; they never dialed her.
	e2e.WaitFor(t, e2e.Patience, func() bool {
		log, _ := os.ReadFile(logFile)
		return strings.Count(string(log), "another network") >= 2
	}, "Carol to hear and ignore the records of the other network")
	for _, n := range []*e2e.Node{alice, bob} {
		if users, _ := n.Users(); len(users) != 1 {
			t.Errorf("%s lists %v, want only its own network's node", n.Name, users)
		}
	}
	if users, _ := carol.Users(); len(users) != 0 {
		t.Errorf("Carol lists %v, want nobody: no node shares her key", users)
	}
	log, _ := os.ReadFile(logFile)
	for _, n := range []*e2e.Node{alice, bob} {
		if strings.Contains(string(log), n.ShortID) {
			t.Errorf("Carol's log names %s's ID %s: the advertisement leaks it", n.Name, n.ShortID)
		}
	}
	for _, n := range []*e2e.Node{alice, bob, carol} {
		n.Quit()
	}
}

func TestNoMDNSSendsNoMulticast(t *testing.T) {
	t.Parallel()
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tcpdump is missing: .ci/run installs it")
		}
		t.Skip("no tcpdump: cannot capture the LAN")
	}
	lab := newLAN(t, 3)
	capture := startCapture(t, tcpdump, lab.hub, "br0", "udp port 5353")

	quiet := []*e2e.Node{
		lab.startLAN(0, "Alice", "--no-mdns"),
		lab.startLAN(1, "Bob", "--no-mdns"),
	}
	// Carol has discovery on: once her queries show in the capture, the
	// capture works and the quiet nodes, started before her, had time to
	// send theirs.
	carol := lab.startLAN(2, "Carol")
	capture.waitFrom(lab.addr(2))
	for i, n := range quiet {
		if capture.from(lab.addr(i)) {
			t.Errorf("%s, started with --no-mdns, sent mDNS packets:\n%s", n.Name, strings.Join(capture.snapshot(), "\n"))
		}
		if users, _ := n.Users(); len(users) != 0 {
			t.Errorf("%s, started with --no-mdns, lists %v", n.Name, users)
		}
	}
	for _, n := range append(quiet, carol) {
		n.Quit()
	}
}

// packetCapture is tcpdump on one interface, its one-line summaries kept.
type packetCapture struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

// startCapture runs tcpdump in namespace ns on iface with filter until the
// test ends, and waits until it captures.
func startCapture(t *testing.T, tcpdump, ns, iface, filter string) *packetCapture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, tcpdump, "-i", iface, "-n", "-l", filter)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tcpdump: %v", err)
	}
	c := &packetCapture{t: t}
	listening := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				close(listening)
			}
		}
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		cmd.Wait()
	})
	select {
	case <-listening:
	case <-time.After(e2e.Patience):
		t.Fatal("tcpdump did not start capturing")
	}
	return c
}

func (c *packetCapture) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.lines)
}

// from reports whether a packet from ip was captured.
func (c *packetCapture) from(ip string) bool {
	for _, l := range c.snapshot() {
		if strings.Contains(l, " "+ip+".") && strings.Contains(l, " > ") &&
			strings.Index(l, " "+ip+".") < strings.Index(l, " > ") {
			return true
		}
	}
	return false
}

// waitFrom waits until a packet from ip was captured.
func (c *packetCapture) waitFrom(ip string) {
	c.t.Helper()
	e2e.WaitFor(c.t, e2e.Patience, func() bool { return c.from(ip) }, "a captured mDNS packet from "+ip)
}
