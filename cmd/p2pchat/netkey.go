package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/p2pchat/p2pchat/peering"
)

// networkKeyEnv holds the network key itself, for setups that pass secrets
// through the environment rather than a file.
const networkKeyEnv = "P2PCHAT_NETWORK_KEY"

// maxNetworkKeyFile bounds what is read of a key file: a key is a line of
// text, not a file of megabytes.
const maxNetworkKeyFile = 64 << 10

// loadNetworkKey returns the network key from --network-key-file (file) or
// from P2PCHAT_NETWORK_KEY (looked up through getenv), or nil for an open
// network. The key is text; surrounding whitespace is not part of it. A
// key file readable by group or others is refused: whoever can read it
// can join the network.
func loadNetworkKey(file string, getenv func(string) string) ([]byte, error) {
	env := getenv(networkKeyEnv)
	if file != "" && env != "" {
		return nil, usageError{fmt.Sprintf("both --network-key-file %s and %s are set; keep one", file, networkKeyEnv)}
	}
	var text, source string
	switch {
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("network key file: %w", err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("network key file: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("network key file %s is not a regular file", file)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return nil, fmt.Errorf("network key file %s is readable by group or others (mode %04o); run: chmod 600 %s", file, perm, file)
		}
		data, err := io.ReadAll(io.LimitReader(f, maxNetworkKeyFile+1))
		if err != nil {
			return nil, fmt.Errorf("network key file %s: %w", file, err)
		}
		if len(data) > maxNetworkKeyFile {
			return nil, fmt.Errorf("network key file %s is larger than %d bytes", file, maxNetworkKeyFile)
		}
		text, source = string(data), "network key file "+file
	case env != "":
		text, source = env, networkKeyEnv
	default:
		return nil, nil
	}
	key := []byte(strings.TrimSpace(text))
	if err := peering.CheckNetworkKey(key); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return key, nil
}
