package web

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/repl"
	"github.com/rs/zerolog"
)

// Node is what the page and the API drive: the REPL's node with private
// messages and the peer table, plus paged history.
type Node interface {
	repl.Node
	repl.Messenger
	repl.Directory
	repl.Historian
	// ID and Name are this node's own.
	ID() eventlog.NodeID
	Name() string
	// ChatsBefore returns up to n chat lines with a Seq below before (0:
	// the newest), oldest first.
	ChatsBefore(before uint64, n int) ([]Line, error)
}

// Line is one chat line of the history.
type Line struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Name string    `json:"name"`
	Text string    `json:"text"`
}

// History page sizes: what a request gets without asking, and the most it
// may ask for.
const (
	DefaultPage = 50
	MaxPage     = 500
)

// maxBody bounds a request body: a line is at most 4096 bytes of text,
// and JSON escaping can grow it six-fold.
const maxBody = 64 << 10

// streamKeepalive is how often the event stream sends a comment, so that
// proxies and browsers keep an idle stream open and a dead one is noticed.
const streamKeepalive = 25 * time.Second

// Config is what a Handler serves.
type Config struct {
	Node Node
	Hub  *Hub
	// Token is the secret (LoadToken) a request must carry.
	Token string
	// Host is the host the page is served on, as --http names it; a
	// request's Host header must name it, localhost or an IP address.
	Host string
	// Port names the cookie: cookies are scoped by host, not port, so
	// two nodes on one machine need cookies of their own.
	Port int
	// TLS marks the cookie Secure.
	TLS    bool
	Logger zerolog.Logger
}

//go:embed static
var static embed.FS

// Handler serves the page and the API.
type Handler struct {
	cfg    Config
	mux    *http.ServeMux
	cookie string
}

// NewHandler returns the page and the API behind its guards.
func NewHandler(cfg Config) *Handler {
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), cookie: "p2pchat_token_" + strconv.Itoa(cfg.Port)}
	files, _ := fs.Sub(static, "static")
	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, files, "index.html")
	})
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(files)))
	h.mux.HandleFunc("GET /api/history", h.history)
	h.mux.HandleFunc("GET /api/private", h.private)
	h.mux.HandleFunc("GET /api/peers", h.peers)
	h.mux.HandleFunc("GET /api/events", h.events)
	h.mux.HandleFunc("POST /api/send", h.send)
	h.mux.HandleFunc("POST /api/msg", h.msg)
	h.mux.HandleFunc("POST /api/command", h.command)
	return h
}

// URL is the address to print for the user: it carries the token, which
// the page trades for a cookie at once.
func URL(scheme, hostPort, token string) string {
	return scheme + "://" + hostPort + "/?token=" + token
}

// ServeHTTP checks, in this order: the Host header, the token (trading a
// token in the address for a cookie), and for state-changing requests and
// the event stream the Origin; then it serves.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cache-Control", "no-store")

	if !h.hostAllowed(r.Host) {
		h.refuse(w, r, http.StatusForbidden, "host not allowed")
		return
	}
	if t := r.URL.Query().Get("token"); t != "" && r.Method == http.MethodGet && r.URL.Path == "/" {
		if !h.tokenOK(t) {
			h.refuse(w, r, http.StatusUnauthorized, "wrong token")
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name: h.cookie, Value: h.cfg.Token, Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: h.cfg.TLS,
		})
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !h.authorized(r) {
		h.refuse(w, r, http.StatusUnauthorized, "no valid token: open the address the node printed, or send Authorization: Bearer TOKEN")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead || r.URL.Path == "/api/events" {
		if !h.originAllowed(r) {
			h.refuse(w, r, http.StatusForbidden, "cross-origin request refused")
			return
		}
	}
	if r.Method == http.MethodPost {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
			h.refuse(w, r, http.StatusUnsupportedMediaType, "send a JSON body with Content-Type: application/json")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	// Debug, not Info: a hostile page in the user's browser could make
	// these as fast as it likes.
	h.cfg.Logger.Debug().Str("method", r.Method).Str("path", r.URL.Path).Str("host", r.Host).
		Str("origin", r.Header.Get("Origin")).Int("status", code).Msg("web request refused: " + msg)
	writeError(w, code, msg)
}

// hostAllowed defeats DNS rebinding: a page on a name the attacker
// controls, pointed at this address, sends that name as Host. An IP
// address cannot be rebound, so any is accepted, as are localhost and the
// configured host.
func (h *Handler) hostAllowed(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		host = hostPort
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	switch {
	case host == "":
		return false
	case net.ParseIP(host) != nil, host == "localhost", strings.HasSuffix(host, ".localhost"):
		return true
	}
	return host == strings.ToLower(h.cfg.Host)
}

func (h *Handler) tokenOK(t string) bool {
	return subtle.ConstantTimeCompare([]byte(t), []byte(h.cfg.Token)) == 1
}

func (h *Handler) authorized(r *http.Request) bool {
	if auth := r.Header.Get("Authorization"); auth != "" {
		t, ok := strings.CutPrefix(auth, "Bearer ")
		return ok && h.tokenOK(t)
	}
	c, err := r.Cookie(h.cookie)
	return err == nil && h.tokenOK(c.Value)
}

// originAllowed refuses a request another site's page made: its Origin
// names that site, and browsers mark it with Sec-Fetch-Site. Scripts such
// as curl send neither and are judged by their token alone.
func (h *Handler) originAllowed(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return origin == scheme+"://"+r.Host
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// decode reads a JSON body into v, refusing unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

func (h *Handler) history(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var before uint64
	if s := q.Get("before"); s != "" {
		var err error
		if before, err = strconv.ParseUint(s, 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, "before: want a sequence number")
			return
		}
	}
	limit, ok := pageLimit(w, q)
	if !ok {
		return
	}
	lines, err := h.cfg.Node.ChatsBefore(before, limit)
	if err != nil {
		h.cfg.Logger.Error().Err(err).Msg("web: read history")
		writeError(w, http.StatusInternalServerError, "cannot read the history")
		return
	}
	if lines == nil {
		lines = []Line{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"lines": lines, "more": len(lines) == limit})
}

// pageLimit reads the limit parameter (DefaultPage when absent), or
// answers 400 and reports false.
func pageLimit(w http.ResponseWriter, q url.Values) (int, bool) {
	s := q.Get("limit")
	if s == "" {
		return DefaultPage, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxPage {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: want 1 to %d", MaxPage))
		return 0, false
	}
	return n, true
}

// PrivateLine is one private message of the history, as the API gives it.
type PrivateLine struct {
	Time time.Time `json:"time"`
	Name string    `json:"name"`
	// To is the recipient of a message this node sent; "" for one it
	// received.
	To   string `json:"to,omitempty"`
	Text string `json:"text"`
}

// private answers the private messages among the last limit lines of the
// history, oldest first, so that the page's private tab shows what was
// said before it was opened.
func (h *Handler) private(w http.ResponseWriter, r *http.Request) {
	limit, ok := pageLimit(w, r.URL.Query())
	if !ok {
		return
	}
	lines, err := h.cfg.Node.History(limit)
	if err != nil {
		h.cfg.Logger.Error().Err(err).Msg("web: read private history")
		writeError(w, http.StatusInternalServerError, "cannot read the history")
		return
	}
	out := []PrivateLine{}
	for _, l := range lines {
		if l.Private {
			out = append(out, PrivateLine{Time: l.Time.UTC(), Name: l.Name, To: l.To, Text: l.Text})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"lines": out})
}

// peerJSON is one peer as the API lists it.
type peerJSON struct {
	Name      string     `json:"name"`
	ID        string     `json:"id"`
	Addr      string     `json:"addr,omitempty"`
	Addrs     []string   `json:"addrs,omitempty"`
	Since     *time.Time `json:"since,omitempty"`
	Connected bool       `json:"connected"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
	Banned    bool       `json:"banned,omitempty"`
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func (h *Handler) peers(w http.ResponseWriter, r *http.Request) {
	n := h.cfg.Node
	connected := []peerJSON{}
	for _, u := range n.Users() {
		connected = append(connected, peerJSON{Name: u.Name, ID: u.ID.String(), Addr: u.Addr, Since: timeOrNil(u.Since), Connected: true})
	}
	known := []peerJSON{}
	peers, err := n.KnownPeers()
	if err != nil {
		h.cfg.Logger.Error().Err(err).Msg("web: read peers")
		writeError(w, http.StatusInternalServerError, "cannot read the peer table")
		return
	}
	for _, p := range peers {
		known = append(known, peerJSON{Name: p.Name, ID: p.ID.String(), Addrs: p.Addrs, Connected: p.Connected, LastSeen: timeOrNil(p.LastSeen), Banned: p.Banned})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"self":      map[string]string{"name": n.Name(), "id": n.ID().String()},
		"connected": connected,
		"known":     known,
	})
}

func (h *Handler) send(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Text string `json:"text"`
	}
	if !decode(w, r, &req) {
		return
	}
	if err := checkText(req.Text); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := h.cfg.Node.Say(r.Context(), req.Text); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (h *Handler) msg(w http.ResponseWriter, r *http.Request) {
	var req struct {
		To   string `json:"to"`
		Text string `json:"text"`
	}
	if !decode(w, r, &req) {
		return
	}
	if err := checkText(req.Text); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := h.cfg.Node.Msg(r.Context(), req.To, req.Text); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// checkText refuses what the REPL would not send: an empty line, or text
// eventlog.CheckText refuses.
func checkText(text string) error {
	if strings.TrimSpace(text) == "" {
		return errors.New("empty text: nothing sent")
	}
	return eventlog.CheckText(text)
}

// command runs one line as the REPL would and answers with what the REPL
// would have printed for it. Only /quit is refused: the page does not own
// the node's life.
func (h *Handler) command(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Line string `json:"line"`
	}
	if !decode(w, r, &req) {
		return
	}
	if cmd, err := repl.Parse(req.Line); err == nil && cmd.Kind == repl.Quit {
		writeError(w, http.StatusBadRequest, "/quit is not available in the page: stop the node where it runs")
		return
	}
	var out bytes.Buffer
	repl.Exec(r.Context(), h.cfg.Node, repl.NewDisplay(&out), req.Line)
	lines := []string{}
	for l := range strings.SplitSeq(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	writeJSON(w, http.StatusOK, map[string][]string{"output": lines})
}

// events streams what the node shows as Server-Sent Events, one JSON
// Event per message, until the client leaves or the server stops.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	ch, cancel := h.cfg.Hub.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, ": stream open\n\n"); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(streamKeepalive)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			_, err = fmt.Fprint(w, ": keepalive\n\n")
		case e, ok := <-ch:
			if !ok {
				return // fell behind; the browser reconnects
			}
			b, _ := json.Marshal(e)
			_, err = fmt.Fprintf(w, "data: %s\n\n", b)
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// ErrPublic is returned by CheckListen for a non-loopback address without
// TLS or an explicit consent.
var ErrPublic = errors.New("serving the page on a non-loopback address without TLS sends the token and the chat in clear")

// CheckListen refuses to serve on an address other machines can reach
// (any address but loopback; an empty host means all interfaces) unless
// TLS is on or insecurePublic says the user wants it anyway.
func CheckListen(hostPort string, tlsOn, insecurePublic bool) error {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return fmt.Errorf("want HOST:PORT: %w", err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q: want 0 to 65535", port)
	}
	if tlsOn || insecurePublic || IsLoopback(host) {
		return nil
	}
	return ErrPublic
}

// IsLoopback reports whether host names only this machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
