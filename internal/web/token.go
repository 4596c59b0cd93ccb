package web

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TokenFile is the file in the data directory that holds the page's token.
const TokenFile = "http_token"

// LoadToken returns the token kept in dir, making it on first use: two
// rand.Text strings, 256 random bits in base32, in a file of mode 0600. A
// token file that group or others may read is refused, since anyone who
// reads it can act as the node's owner.
func LoadToken(dir string) (string, error) {
	path := filepath.Join(dir, TokenFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		token := rand.Text() + rand.Text()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", fmt.Errorf("create web token: %w", err)
		}
		if _, err := f.WriteString(token + "\n"); err != nil {
			f.Close()
			return "", fmt.Errorf("write web token %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return "", fmt.Errorf("write web token %s: %w", path, err)
		}
		return token, nil
	}
	if err != nil {
		return "", fmt.Errorf("read web token: %w", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("read web token: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("web token %s is readable by others (mode %v): chmod 600 it", path, info.Mode().Perm())
	}
	token := strings.TrimSpace(string(b))
	if len(token) < 32 {
		return "", fmt.Errorf("web token %s is too short: delete it to make a new one", path)
	}
	return token, nil
}
