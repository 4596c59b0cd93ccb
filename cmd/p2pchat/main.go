// Command p2pchat is a peer-to-peer chat node. main parses the command
// line and wires the packages together; the behaviour lives in store,
// eventlog, peering and repl.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal asks for a graceful shutdown; from then on the
	// default handling is back, so a second one ends a shutdown that is
	// stuck.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError is a mistake on the command line found after parsing; it
// exits like a parse error.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// stdio is the process's standard streams, passed to the commands so they
// never reach for globals.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

func run(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) int {
	var cli CLI
	exited := false
	parser, err := kong.New(&cli,
		kong.Name("p2pchat"),
		kong.Description("A peer-to-peer chat node. Every node listens and dials, keeps everything it learns in an event log, and comes back after a restart where it was."),
		kong.Vars{"version": versionLine()},
		kong.DefaultEnvars("P2PCHAT"),
		kong.Writers(out, errOut),
		kong.Exit(func(int) { exited = true }),
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Bind(stdio{in: in, out: out, err: errOut}),
	)
	if err != nil {
		fmt.Fprintf(errOut, "p2pchat: %v\n", err)
		return exitError
	}
	kctx, err := parser.Parse(args)
	if exited { // --help, --version
		return exitOK
	}
	if err != nil {
		// The usage goes with the error, on stderr.
		var perr *kong.ParseError
		if errors.As(err, &perr) && perr.Context != nil {
			parser.Stdout = errOut
			_ = perr.Context.PrintUsage(true)
		}
		fmt.Fprintf(errOut, "p2pchat: %v\n", err)
		return exitUsage
	}
	kctx.Bind(&cli.Globals)
	if err := kctx.Run(); err != nil {
		fmt.Fprintf(errOut, "p2pchat: %v\n", err)
		var uerr usageError
		if errors.As(err, &uerr) {
			return exitUsage
		}
		return exitError
	}
	return exitOK
}
