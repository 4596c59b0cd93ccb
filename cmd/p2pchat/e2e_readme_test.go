package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/internal/e2e"
)

// readmeSections splits README.md into its "## " sections, each with the
// code blocks it holds, in order.
func readmeSections(t *testing.T, readme string) map[string][]string {
	t.Helper()
	sections := map[string][]string{}
	section, block, inBlock := "", []string(nil), false
	for _, line := range strings.Split(readme, "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			if inBlock {
				sections[section] = append(sections[section], strings.Join(block, "\n"))
			}
			block, inBlock = nil, !inBlock
		case inBlock:
			block = append(block, line)
		case strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		}
	}
	return sections
}

// readmeCommand finds the one-line command in section's code blocks that
// contains all of has, and splits it into words.
func readmeCommand(t *testing.T, sections map[string][]string, section string, has ...string) []string {
	t.Helper()
	for _, block := range sections[section] {
	lines:
		for _, line := range strings.Split(block, "\n") {
			for _, h := range has {
				if !strings.Contains(line, h) {
					continue lines
				}
			}
			return strings.Fields(line)
		}
	}
	t.Fatalf("README.md section %q has no command with %q", section, has)
	return nil
}

// portOf returns the value of --port in a command.
func portOf(t *testing.T, words []string) string {
	t.Helper()
	for i, w := range words {
		if w == "--port" && i+1 < len(words) {
			return words[i+1]
		}
	}
	t.Fatalf("command %q has no --port", words)
	return ""
}

var goRun = regexp.MustCompile(`^go run \./cmd/p2pchat `)

func TestTheReadmeWorksLiterallyOnAFreshClone(t *testing.T) {
	if testing.Short() {
		t.Skip("clones the repository and compiles it")
	}
	t.Parallel()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git clone: %v", err)
	}
	clone := filepath.Join(t.TempDir(), "p2pchat")
	if out, err := exec.Command("git", "clone", "--quiet", strings.TrimSpace(string(top)), clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	readme, err := os.ReadFile(filepath.Join(clone, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := readmeSections(t, string(readme))
	alice := readmeCommand(t, sections, "The two commands", "--uname Alice")
	bob := readmeCommand(t, sections, "Chatting", "--uname Bob")
	for _, words := range [][]string{alice, bob} {
		if !goRun.MatchString(strings.Join(words, " ")) {
			t.Fatalf("README command %q does not start with go run ./cmd/p2pchat: it needs a build first", words)
		}
		// The README's ports are fixed; another program may hold them.
		ln, err := net.Listen("tcp", net.JoinHostPort("", portOf(t, words)))
		if err != nil {
			t.Skipf("port of %q is taken: %v", words, err)
		}
		ln.Close()
	}

	// Compiling the clone takes longer than a node may take to start; the
	// cache this fills is the go command's own, shared by both go runs.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	warm := exec.CommandContext(ctx, "go", "build", "-o", os.DevNull, "./cmd/p2pchat")
	warm.Dir = clone
	if out, err := warm.CombinedOutput(); err != nil {
		t.Fatalf("the clone does not build: %v\n%s", err, out)
	}

	// The default data directories, under a home of the test's own.
	data := []string{"XDG_DATA_HOME=" + t.TempDir()}
	a := e2e.StartIn(t, clone, data, alice[0], alice[1:]...)
	a.WaitListening()
	b := e2e.StartIn(t, clone, data, bob[0], bob[1:]...)
	b.WaitListening()
	waitMesh(t, a, b)
	b.Send("hello from the README")
	a.WaitLine(chatLine("Bob", "hello from the README"))
	a.Send("hi Bob")
	b.WaitLine(chatLine("Alice", "hi Bob"))
	b.Quit()
	a.Quit()
	if !strings.HasPrefix(a.DataDir, strings.TrimPrefix(data[0], "XDG_DATA_HOME=")) {
		t.Errorf("Alice keeps her data in %s, want the default directory under XDG_DATA_HOME", a.DataDir)
	}

	// The install command puts a working p2pchat in GOBIN, as it says.
	install := readmeCommand(t, sections, "Install", "go install")
	gobin := t.TempDir()
	cmd := exec.CommandContext(ctx, install[0], install[1:]...)
	cmd.Dir, cmd.Env = clone, append(os.Environ(), "GOBIN="+gobin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%q: %v\n%s", install, err, out)
	}
	res := e2e.Binary(filepath.Join(gobin, "p2pchat")).Run(t, "version")
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, "p2pchat ") {
		t.Errorf("the installed p2pchat version: exit %d, %q", res.Code, res.Stdout)
	}
}
