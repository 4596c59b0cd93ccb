// Package web is the node's second front end: a chat page in the browser
// and the HTTP API behind it, for people who do not live in a terminal and
// for bots and scripts.
//
// # Model
//
// The page drives the node through Node, the same calls the REPL makes:
// a line typed into the page goes through repl.Exec, so "/nick", "/kick",
// "//text" and a plain line mean exactly what they mean in the terminal.
// What the node shows arrives through Hub, a fan-out that satisfies the
// node's display interface beside the terminal: every chat line, private
// message and system line is handed to each open page as a Server-Sent
// Event. History is read from the log a page at a time (Node.ChatsBefore),
// so scrolling back never loads the whole log.
//
// # Safe by default
//
// Only the holder of a secret token (LoadToken: made on first start, kept
// 0600 in the data directory) can read or act. The node prints the page's
// address with the token; the page exchanges it for an HttpOnly,
// SameSite=Strict cookie and redirects to an address without it, so the
// token leaves the address bar. Scripts send it as "Authorization: Bearer".
// The Host header must name the configured host, localhost or an IP
// address, which defeats DNS rebinding; state-changing requests and the
// event stream refuse a foreign Origin (and a cross-site Sec-Fetch-Site);
// POST bodies must be JSON, which a plain HTML form cannot send; no CORS
// header is ever written. A Content-Security-Policy allows only the
// page's own script and style, and the script inserts peer-controlled text
// with textContent only, never as HTML. Serving on a non-loopback address
// is refused (CheckListen) unless TLS is on or the user asks for it
// explicitly.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary: no
// build step.
package web
