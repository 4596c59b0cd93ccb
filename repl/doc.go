// Package repl is the user's side of a p2pchat node: it reads lines,
// parses "/" commands, drives the node, and shows what happens. It knows
// the terminal and nothing of sockets or storage.
//
// # Commands
//
// Parse turns a line into a Command. A line that does not start with '/'
// is chat text, and "//text" sends "/text" literally. "/me waves" sends the
// chat text "* waves": an action is an ordinary chat line, so it needs
// nothing new on the wire and every node shows it. Everything else that
// starts with '/' must be a known command (HelpText lists them; names are
// case-insensitive). A line that would send something invalid (text over
// eventlog.MaxTextLen bytes, control characters, a bad name or address) is
// refused with a one-line message and nothing is sent. NAME arguments may
// be name#shortid when two peers share a name, and may be "quoted" when
// they contain spaces.
//
// # Driving the node
//
// The REPL declares what it needs: Node (Say, Users, PeersPayload) is
// required, and each further feature is an optional interface (Messenger,
// Renamer, Moderator, Historian, Connector, Directory, Completer) that Run
// finds with a type assertion. A node without one answers "*** /x is not
// available", so features can arrive one at a time. Errors from the node
// are shown as "*** error: ..." and the REPL goes on; only /quit, end of
// input, an input error or the end of the context stop Run.
//
// # Output
//
// Display is the one way to the screen, for the REPL and the node alike:
// "15:04:05 <name> text" for chat, "15:04:05 [private] <name> text" for
// private messages ("[private to Bob]" for the sender's echo), "*** text"
// for system lines, and Printf for command results; a time not of today
// comes with its date (Stamp). It is safe for concurrent use, writes each
// line with a single Write and flushes it, and replaces control and
// invisible characters (Sanitize) so that text from peers cannot drive the
// terminal or read differently from what it says.
//
// The formatters (ChatLine, PeerRows and their kin) and Sanitize are the
// one place where those lines are made: the reading commands of
// cmd/p2pchat print history and the peer table through them too.
//
// # Plain and terminal mode
//
// Options.Terminal chooses the mode; the caller decides, typically with
// isatty on stdin and stdout. Plain mode reads lines as they come, shows
// no prompt, and writes exactly one output line per event: scripts and
// tests read it line by line. Terminal mode edits the line with
// github.com/chzyer/readline: history (kept in Options.HistoryFile across
// runs), tab completion of commands and peer names, and output that
// appears above the line being typed, which is then redrawn intact. The
// prompt shows Options.Name and follows a /nick; /p is indented. The
// edited line is cleared when it is entered, because the node shows the
// sent line itself in chat form. Raw mode means Ctrl-C raises no signal:
// it clears the line, or leaves on an empty line. Ctrl-Z is ignored, since
// a suspended node would stop answering its peers.
//
// Input is read by a goroutine that Run owns, so Run can return when its
// context ends even while a Read blocks; see Run for when that goroutine
// ends.
package repl
