package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// netkeyTestFile writes a key file with the given content and mode.
func netkeyTestFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "network.key")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode passes through the umask; set it exactly.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func netkeyTestEnv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestNetworkKeyComesFromTheFileWithoutSurroundingWhitespace(t *testing.T) {
	path := netkeyTestFile(t, "\n  sixteen or more bytes of key \t\n", 0o600)
	key, err := loadNetworkKey(path, netkeyTestEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if string(key) != "sixteen or more bytes of key" {
		t.Errorf("key = %q", key)
	}
}

func TestNetworkKeyComesFromTheEnvironment(t *testing.T) {
	key, err := loadNetworkKey("", netkeyTestEnv(map[string]string{networkKeyEnv: " a key from the environment "}))
	if err != nil {
		t.Fatal(err)
	}
	if string(key) != "a key from the environment" {
		t.Errorf("key = %q", key)
	}
	if key, err := loadNetworkKey("", netkeyTestEnv(nil)); key != nil || err != nil {
		t.Errorf("without a key: %q, %v; want an open network", key, err)
	}
}

func TestNetworkKeyIsRefusedWhenUnsafeShortOrAmbiguous(t *testing.T) {
	good := "a key long enough to count"
	for _, tc := range []struct {
		name string
		file func(t *testing.T) string
		env  string
		want []string // in the message
	}{
		{"readable by others", func(t *testing.T) string { return netkeyTestFile(t, good, 0o644) }, "", []string{"readable by group or others", "chmod 600"}},
		{"readable by the group", func(t *testing.T) string { return netkeyTestFile(t, good, 0o640) }, "", []string{"chmod 600"}},
		{"shorter than 16 bytes", func(t *testing.T) string { return netkeyTestFile(t, "  fifteen bytes \n", 0o600) }, "", []string{"at least 16"}},
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, "", []string{"no such file"}},
		{"a directory", func(t *testing.T) string { return t.TempDir() }, "", []string{"not a regular file"}},
		{"both file and environment", func(t *testing.T) string { return netkeyTestFile(t, good, 0o600) }, good, []string{"both"}},
		{"short in the environment", func(*testing.T) string { return "" }, "too short", []string{networkKeyEnv, "at least 16"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.file(t)
			key, err := loadNetworkKey(path, netkeyTestEnv(map[string]string{networkKeyEnv: tc.env}))
			if err == nil {
				t.Fatalf("accepted key %q", key)
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestRunRefusesAKeyFileOthersCanReadBeforeTouchingTheDataDirectory(t *testing.T) {
	t.Setenv(networkKeyEnv, "")
	path := netkeyTestFile(t, "a key long enough to count", 0o604)
	dir := filepath.Join(t.TempDir(), "node")
	for _, args := range [][]string{
		{"--data-dir", dir, "--uname", "Alice", "--network-key-file", path},
		{"--data-dir", dir, "--uname", "Alice"}, // from P2PCHAT_NETWORK_KEY_FILE
	} {
		if len(args) == 4 {
			t.Setenv("P2PCHAT_NETWORK_KEY_FILE", path)
		}
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
		if code != exitError {
			t.Errorf("%q: exit %d, want %d", args, code, exitError)
		}
		if msg := errOut.String(); !strings.Contains(msg, path) || !strings.Contains(msg, "chmod 600 "+path) {
			t.Errorf("%q: message %q should name the file and the fix", args, msg)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%q: data directory created although the node refused to start", args)
		}
	}
}
