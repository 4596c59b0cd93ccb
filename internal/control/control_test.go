package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAskGetsTheHandlersOutput(t *testing.T) {
	dir := t.TempDir()
	srv, err := Listen(dir, func(_ context.Context, req Request, w io.Writer) error {
		fmt.Fprintf(w, "%s n=%d json=%v\nsecond line\n", req.Command, req.N, req.JSON)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var out bytes.Buffer
	if err := Ask(context.Background(), dir, Request{Command: "history", N: 5, JSON: true}, &out); err != nil {
		t.Fatalf("Ask: %v", err)
	}
	if want := "history n=5 json=true\nsecond line\n"; out.String() != want {
		t.Errorf("answer = %q, want %q", out.String(), want)
	}
}

func TestAskReturnsTheHandlersErrorAfterItsOutputAsIs(t *testing.T) {
	for _, tt := range []struct{ wrote, want string }{
		{"partial\n", "partial\n"}, // no empty line added
		{"partial", "partial\n"},   // a line cut short is ended
		{"", ""},
	} {
		dir := t.TempDir()
		srv, err := Listen(dir, func(_ context.Context, _ Request, w io.Writer) error {
			fmt.Fprint(w, tt.wrote)
			return errors.New("3 differences")
		})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err = Ask(context.Background(), dir, Request{Command: "verify"}, &out)
		srv.Close()
		if err == nil || err.Error() != "3 differences" {
			t.Fatalf("Ask error = %v, want the handler's", err)
		}
		if out.String() != tt.want {
			t.Errorf("handler wrote %q; output before the error = %q, want %q", tt.wrote, out.String(), tt.want)
		}
	}
}

func TestAskWithoutAServerSaysSo(t *testing.T) {
	err := Ask(context.Background(), t.TempDir(), Request{Command: "peers"}, io.Discard)
	if !errors.Is(err, ErrNoServer) {
		t.Fatalf("Ask error = %v, want ErrNoServer", err)
	}
}

func TestSocketIsPrivateAndRemovedOnClose(t *testing.T) {
	dir := t.TempDir()
	// A socket file left behind by a crashed node must not stop a new one.
	if err := os.WriteFile(filepath.Join(dir, SocketName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(dir, func(context.Context, Request, io.Writer) error { return nil })
	if err != nil {
		t.Fatalf("Listen over a stale file: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, SocketName))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode = %o, want 600", perm)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, SocketName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
}
