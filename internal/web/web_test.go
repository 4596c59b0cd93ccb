package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/internal/web"
	"github.com/p2pchat/p2pchat/repl"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "TOKENTOKENTOKENTOKENTOKENTOKENTOKENTOKEN"

// fakeNode records what the page asked of it.
type fakeNode struct {
	mu    sync.Mutex
	said  []string
	msgs  []string
	lines []web.Line
}

func (n *fakeNode) Say(_ context.Context, text string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.said = append(n.said, text)
	return nil
}

func (n *fakeNode) Users() []repl.User {
	return []repl.User{{Name: "Bob", ID: eventlog.NodeID{2}, Addr: "127.0.0.1:9", Since: time.Unix(1, 0)}}
}

func (n *fakeNode) PeersPayload() ([]byte, error) { return []byte(`{"peers":[]}`), nil }

func (n *fakeNode) Msg(_ context.Context, name, text string) error {
	if name != "Bob" {
		return errors.New("no peer named " + name)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.msgs = append(n.msgs, name+":"+text)
	return nil
}

func (n *fakeNode) KnownPeers() ([]repl.KnownPeer, error) {
	return []repl.KnownPeer{{Name: "Bob", ID: eventlog.NodeID{2}, Connected: true}, {Name: "Carol", ID: eventlog.NodeID{3}}}, nil
}

func (n *fakeNode) History(count int) ([]repl.HistoryLine, error) {
	at := time.Unix(1_700_000_000, 0)
	out := []repl.HistoryLine{
		{Time: at, Name: "Bob", Text: "a chat line"},
		{Time: at, Name: "Bob", Text: "psst", Private: true},
		{Time: at, Name: "Alice", Text: "psst back", Private: true, To: "Bob"},
	}
	return out[max(0, len(out)-count):], nil
}

func (n *fakeNode) ID() eventlog.NodeID { return eventlog.NodeID{1} }
func (n *fakeNode) Name() string        { return "Alice" }

func (n *fakeNode) ChatsBefore(before uint64, count int) ([]web.Line, error) {
	var out []web.Line
	for _, l := range n.lines {
		if before == 0 || l.Seq < before {
			out = append(out, l)
		}
	}
	if len(out) > count {
		out = out[len(out)-count:]
	}
	return out, nil
}

func (n *fakeNode) saidLines() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.said)
}

type fixture struct {
	node *fakeNode
	hub  *web.Hub
	srv  *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{node: &fakeNode{}, hub: web.NewHub()}
	for i := 1; i <= 120; i++ {
		f.node.lines = append(f.node.lines, web.Line{Seq: uint64(i * 2), Time: time.Unix(int64(i), 0).UTC(), Name: "Bob", Text: "line"})
	}
	h := web.NewHandler(web.Config{Node: f.node, Hub: f.hub, Token: token, Host: "chat.example", Port: 1, Logger: zerolog.Nop()})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

// do sends a request with the token as a bearer header unless headers
// say otherwise; a header set to "" is removed.
func (f *fixture) do(t *testing.T, method, path, body string, headers map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode response: %v", err)
	}
}

func TestTheTokenInTheAddressBecomesAStrictHttpOnlyCookie(t *testing.T) {
	f := newFixture(t)
	resp := f.do(t, "GET", "/?token="+token, "", map[string]string{"Authorization": ""})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("token exchange: %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 || cookies[0].Value != token || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v: want the token, HttpOnly, SameSite=Strict", cookies)
	}
	page := f.do(t, "GET", "/", "", map[string]string{"Authorization": "", "Cookie": cookies[0].Name + "=" + token})
	b, _ := io.ReadAll(page.Body)
	if page.StatusCode != http.StatusOK || !strings.Contains(string(b), "<title>p2pchat</title>") {
		t.Fatalf("page with cookie: %d %.80q", page.StatusCode, b)
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q: want script-src 'self'", csp)
	}
}

func TestRequestsWithoutTheRightTokenAreRefused(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		name, path string
		headers    map[string]string
	}{
		{"no token", "/api/history", map[string]string{"Authorization": ""}},
		{"no token, the page", "/", map[string]string{"Authorization": ""}},
		{"wrong bearer", "/api/peers", map[string]string{"Authorization": "Bearer nope"}},
		{"wrong cookie", "/api/peers", map[string]string{"Authorization": "", "Cookie": "p2pchat_token_1=nope"}},
		{"another node's cookie", "/api/peers", map[string]string{"Authorization": "", "Cookie": "p2pchat_token_2=" + token}},
		{"wrong token in the address", "/?token=nope", map[string]string{"Authorization": ""}},
		{"static files too", "/static/app.js", map[string]string{"Authorization": ""}},
	} {
		resp := f.do(t, "GET", c.path, "", c.headers)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", c.name, resp.StatusCode)
		}
	}
}

func TestAForeignHostIsRefusedEvenWithTheToken(t *testing.T) {
	f := newFixture(t)
	for host, want := range map[string]int{
		"evil.example":          http.StatusForbidden,
		"evil.example:8080":     http.StatusForbidden,
		"chat.example.evil.com": http.StatusForbidden,
		"chat.example:8080":     http.StatusOK,
		"localhost:8080":        http.StatusOK,
		"127.0.0.1:8080":        http.StatusOK,
		"[::1]:8080":            http.StatusOK,
		"192.168.1.5":           http.StatusOK,
	} {
		resp := f.do(t, "GET", "/api/peers", "", map[string]string{"Host": host})
		if resp.StatusCode != want {
			t.Errorf("Host %s: status %d, want %d", host, resp.StatusCode, want)
		}
	}
}

func TestAForeignOriginCannotActOrListen(t *testing.T) {
	f := newFixture(t)
	same := f.srv.URL
	for _, c := range []struct {
		name, method, path string
		headers            map[string]string
		want               int
	}{
		{"send from another site", "POST", "/api/send", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"send from another port", "POST", "/api/send", map[string]string{"Origin": "http://127.0.0.1:1"}, http.StatusForbidden},
		{"command, cross-site fetch", "POST", "/api/command", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"stream from another site", "GET", "/api/events", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"send from the page", "POST", "/api/send", map[string]string{"Origin": same, "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"send from a script", "POST", "/api/send", nil, http.StatusOK},
	} {
		body := `{"text":"hi"}`
		if c.path == "/api/command" {
			body = `{"line":"hi"}`
		}
		resp := f.do(t, c.method, c.path, body, c.headers)
		if resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
		}
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("%s: Access-Control-Allow-Origin %q: want no CORS", c.name, v)
		}
	}
	if got := f.node.saidLines(); len(got) != 2 {
		t.Errorf("lines said: %q, want the two allowed sends only", got)
	}
}

func TestAFormPostIsRefused(t *testing.T) {
	f := newFixture(t)
	resp := f.do(t, "POST", "/api/send", "text=hi", map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form post: status %d, want 415", resp.StatusCode)
	}
}

func TestHistoryPagesBackwards(t *testing.T) {
	f := newFixture(t)
	var seen []uint64
	path := "/api/history?limit=50"
	for range 10 {
		var page struct {
			Lines []web.Line
			More  bool
		}
		readJSON(t, f.do(t, "GET", path, "", nil), &page)
		var seqs []uint64
		for _, l := range page.Lines {
			seqs = append(seqs, l.Seq)
		}
		seen = append(seqs, seen...)
		if !page.More {
			break
		}
		path = "/api/history?limit=50&before=" + strconv.FormatUint(page.Lines[0].Seq, 10)
	}
	if len(seen) != 120 || seen[0] != 2 || seen[119] != 240 || !slices.IsSorted(seen) {
		t.Errorf("paged %d lines from %v to %v, want 120 from 2 to 240 in order", len(seen), seen[:1], seen[len(seen)-1:])
	}
	for _, bad := range []string{"?limit=0", "?limit=501", "?before=x", "?limit=-1"} {
		if resp := f.do(t, "GET", "/api/history"+bad, "", nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("history%s: status %d, want 400", bad, resp.StatusCode)
		}
	}
}

func TestPrivateHistoryHoldsOnlyPrivateMessagesWithTheirRecipient(t *testing.T) {
	f := newFixture(t)
	var got struct{ Lines []web.PrivateLine }
	readJSON(t, f.do(t, "GET", "/api/private?limit=50", "", nil), &got)
	want := []web.PrivateLine{
		{Time: time.Unix(1_700_000_000, 0), Name: "Bob", Text: "psst"},
		{Time: time.Unix(1_700_000_000, 0), Name: "Alice", To: "Bob", Text: "psst back"},
	}
	if len(got.Lines) != len(want) {
		t.Fatalf("private history %+v, want %+v", got.Lines, want)
	}
	for i := range want {
		if g := got.Lines[i]; !g.Time.Equal(want[i].Time) || g.Name != want[i].Name || g.To != want[i].To || g.Text != want[i].Text {
			t.Errorf("line %d = %+v, want %+v", i, g, want[i])
		}
	}
	if resp := f.do(t, "GET", "/api/private?limit=0", "", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("private?limit=0: status %d, want 400", resp.StatusCode)
	}
}

func TestPeersListsConnectedAndKnown(t *testing.T) {
	f := newFixture(t)
	var got struct {
		Self      struct{ Name, ID string }
		Connected []struct{ Name, ID, Addr string }
		Known     []struct {
			Name      string
			Connected bool
		}
	}
	readJSON(t, f.do(t, "GET", "/api/peers", "", nil), &got)
	if got.Self.Name != "Alice" || len(got.Connected) != 1 || got.Connected[0].Addr != "127.0.0.1:9" || len(got.Known) != 2 || got.Known[1].Name != "Carol" {
		t.Errorf("peers: %+v", got)
	}
}

func TestSendAndMsgCheckWhatTheySend(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		path, body string
		want       int
	}{
		{"/api/send", `{"text":"hello"}`, http.StatusOK},
		{"/api/send", `{"text":""}`, http.StatusBadRequest},
		{"/api/send", `{"text":"` + strings.Repeat("x", eventlog.MaxTextLen+1) + `"}`, http.StatusBadRequest},
		{"/api/send", `{"text":"a","extra":1}`, http.StatusBadRequest},
		{"/api/send", `not json`, http.StatusBadRequest},
		{"/api/msg", `{"to":"Bob","text":"psst"}`, http.StatusOK},
		{"/api/msg", `{"to":"Nobody","text":"psst"}`, http.StatusBadRequest},
	} {
		if resp := f.do(t, "POST", c.path, c.body, nil); resp.StatusCode != c.want {
			b, _ := io.ReadAll(resp.Body)
			t.Errorf("POST %s %.40s: status %d (%s), want %d", c.path, c.body, resp.StatusCode, b, c.want)
		}
	}
	if got := f.node.saidLines(); !slices.Equal(got, []string{"hello"}) {
		t.Errorf("said %q, want [hello]", got)
	}
	if f.node.msgs[0] != "Bob:psst" {
		t.Errorf("messages %q", f.node.msgs)
	}
}

func TestCommandsRunThroughTheREPLParser(t *testing.T) {
	f := newFixture(t)
	run := func(line string) (int, []string) {
		body, _ := json.Marshal(map[string]string{"line": line})
		resp := f.do(t, "POST", "/api/command", string(body), nil)
		var out struct{ Output []string }
		readJSON(t, resp, &out)
		return resp.StatusCode, out.Output
	}
	if code, out := run("/l"); code != http.StatusOK || len(out) != 1 || !strings.Contains(out[0], "Bob") {
		t.Errorf("/l: %d %q", code, out)
	}
	if code, out := run("/frobnicate"); code != http.StatusOK || len(out) != 1 || !strings.Contains(out[0], "unknown command /frobnicate") {
		t.Errorf("/frobnicate: %d %q", code, out)
	}
	if code, _ := run("/quit"); code != http.StatusBadRequest {
		t.Errorf("/quit: status %d, want 400", code)
	}
	run("plain words")
	run("//slash")
	if got := f.node.saidLines(); !slices.Equal(got, []string{"plain words", "/slash"}) {
		t.Errorf("said %q", got)
	}
}

func TestTheEventStreamCarriesWhatTheNodeShows(t *testing.T) {
	f := newFixture(t)
	resp := f.do(t, "GET", "/api/events", "", nil)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	if l, _ := r.ReadString('\n'); !strings.HasPrefix(l, ":") {
		t.Fatalf("first line %q, want the opening comment", l)
	}
	// The subscription exists once the opening comment arrived.
	f.hub.ShowChat(time.Unix(5, 0), "Bob", "<img src=x onerror=alert(1)>")
	f.hub.ShowSystem("Bob left")
	var got []web.Event
	for len(got) < 2 {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if data, ok := strings.CutPrefix(l, "data: "); ok {
			var e web.Event
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
		}
	}
	if got[0].Kind != "chat" || got[0].Text != "<img src=x onerror=alert(1)>" || got[1].Kind != "system" || got[1].Text != "Bob left" {
		t.Errorf("events %+v", got)
	}
}

func TestASubscriberThatFallsBehindIsDropped(t *testing.T) {
	h := web.NewHub()
	ch, cancel := h.Subscribe()
	defer cancel()
	for range 10000 {
		h.ShowSystem("x")
	}
	n := 0
	for range ch {
		n++
	}
	if n == 0 || n >= 10000 {
		t.Errorf("a stalled subscriber got %d of 10000 events before being dropped", n)
	}
}

func TestLoadTokenMakesOneSecretFile(t *testing.T) {
	dir := t.TempDir()
	a, err := web.LoadToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, web.TokenFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v; want 0600", err, info.Mode().Perm())
	}
	b, err := web.LoadToken(dir)
	if err != nil || a != b || len(a) < 40 {
		t.Fatalf("second load: %q, %v; want the same token %q", b, err, a)
	}
	if err := os.Chmod(filepath.Join(dir, web.TokenFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := web.LoadToken(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable token: %v, want a refusal", err)
	}
}

func TestCheckListenRefusesAPublicAddressWithoutTLSOrConsent(t *testing.T) {
	for _, c := range []struct {
		addr           string
		tls, insecure  bool
		wantErr        bool
		wantPublicOnly bool
	}{
		{"127.0.0.1:8080", false, false, false, false},
		{"localhost:0", false, false, false, false},
		{"[::1]:8080", false, false, false, false},
		{"0.0.0.0:8080", false, false, true, true},
		{":8080", false, false, true, true},
		{"192.168.1.5:8080", false, false, true, true},
		{"192.168.1.5:8080", true, false, false, false},
		{"192.168.1.5:8080", false, true, false, false},
		{"nonsense", false, false, true, false},
		{"127.0.0.1:99999", false, false, true, false},
	} {
		err := web.CheckListen(c.addr, c.tls, c.insecure)
		if (err != nil) != c.wantErr || c.wantPublicOnly != errors.Is(err, web.ErrPublic) {
			t.Errorf("CheckListen(%q, tls=%v, insecure=%v) = %v", c.addr, c.tls, c.insecure, err)
		}
	}
}
