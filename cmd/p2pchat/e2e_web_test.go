package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/p2pchat/p2pchat/internal/e2e"
)

// page is a node's web page as its "*** web page:" line gives it.
type page struct {
	base  string // http://127.0.0.1:PORT
	token string
	url   string // with the token
}

var pageLine = regexp.MustCompile(`\*\*\* web page: (https?://[^/]+)/\?token=(\S+)$`)

// webPage waits for the node's page address.
func webPage(t *testing.T, n *e2e.Node) page {
	t.Helper()
	m := pageLine.FindStringSubmatch(n.WaitLine("*** web page: "))
	if m == nil {
		t.Fatalf("no page address in %q", n.WaitLine("*** web page: "))
	}
	return page{base: m[1], token: m[2], url: m[1] + "/?token=" + m[2]}
}

// call makes an API request with the token as a bearer header and returns
// the status and body.
func (p page) call(t *testing.T, method, path, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, p.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
		} else if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mustCall is call that expects 200.
func (p page) mustCall(t *testing.T, method, path, body string) string {
	t.Helper()
	code, out := p.call(t, method, path, body, nil)
	if code != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, code, out)
	}
	return out
}

// checkRefusals makes the three requests the page must refuse: no token,
// a foreign Host (DNS rebinding), a foreign Origin (another site's page).
func (p page) checkRefusals(t *testing.T) {
	t.Helper()
	for _, c := range []struct {
		name, method, path, body string
		header                   map[string]string
		want                     int
	}{
		{"no token", "GET", "/api/history", "", map[string]string{"Authorization": ""}, http.StatusUnauthorized},
		{"no token, the page", "GET", "/", "", map[string]string{"Authorization": ""}, http.StatusUnauthorized},
		{"foreign Host", "GET", "/api/history", "", map[string]string{"Host": "rebound.example:80"}, http.StatusForbidden},
		{"foreign Origin", "POST", "/api/send", `{"text":"forged"}`, map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"foreign Origin, stream", "GET", "/api/events", "", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
	} {
		if code, body := p.call(t, c.method, c.path, c.body, c.header); code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.want)
		}
	}
}

func TestWebAPIDrivesARealNode(t *testing.T) {
	alice := startNode(t, "Alice", "--http", "127.0.0.1:0")
	bob := startNode(t, "Bob", "--peer", alice.Addr(), "--http", "127.0.0.1:0")
	alice.WaitLine("*** Bob joined")
	bob.WaitLine("*** Alice joined")
	ap, bp := webPage(t, alice), webPage(t, bob)
	ap.checkRefusals(t)

	// Bob's event stream, opened before anything is said.
	req, _ := http.NewRequest("GET", bp.base+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+bp.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	stream := bufio.NewReader(resp.Body)
	if l, _ := stream.ReadString('\n'); !strings.HasPrefix(l, ":") {
		t.Fatalf("stream opened with %q", l)
	}

	for i := range 60 {
		ap.mustCall(t, "POST", "/api/send", fmt.Sprintf(`{"text":"api line %02d"}`, i))
	}
	bob.WaitLine("<Alice> api line 59")

	// The stream delivers the lines in order, as Bob's terminal shows them.
	for i := 0; i < 60; {
		l, err := stream.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if data, ok := strings.CutPrefix(l, "data: "); ok {
			var e struct{ Kind, Name, Text string }
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				t.Fatal(err)
			}
			if e.Kind == "chat" {
				if want := fmt.Sprintf("api line %02d", i); e.Name != "Alice" || e.Text != want {
					t.Fatalf("stream event %+v, want Alice's %q", e, want)
				}
				i++
			}
		}
	}

	// History pages back through all 60 lines on Bob's node.
	var got []string
	before := ""
	for range 10 {
		var page struct {
			Lines []struct {
				Seq  uint64
				Text string
			}
			More bool
		}
		if err := json.Unmarshal([]byte(bp.mustCall(t, "GET", "/api/history?limit=25"+before, "")), &page); err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, l := range page.Lines {
			texts = append(texts, l.Text)
		}
		got = append(texts, got...)
		if !page.More || len(page.Lines) == 0 {
			break
		}
		before = "&before=" + strconv.FormatUint(page.Lines[0].Seq, 10)
	}
	if len(got) != 60 || got[0] != "api line 00" || got[59] != "api line 59" {
		t.Errorf("paged history: %d lines, %q ... ; want the 60 lines in order", len(got), got[:min(3, len(got))])
	}

	// Peers, private message, command.
	if out := ap.mustCall(t, "GET", "/api/peers", ""); !strings.Contains(out, `"name":"Bob"`) || !strings.Contains(out, `"self":{"id"`) {
		t.Errorf("peers: %s", out)
	}
	ap.mustCall(t, "POST", "/api/msg", `{"to":"Bob","text":"just for you"}`)
	bob.WaitLine("[private] <Alice> just for you")
	if out := ap.mustCall(t, "POST", "/api/command", `{"line":"/l"}`); !strings.Contains(out, "Bob") {
		t.Errorf("/l through the API: %s", out)
	}
	ap.mustCall(t, "POST", "/api/command", `{"line":"/nick Alicia"}`)
	bob.WaitLine("Alice is now Alicia")
	if code, _ := ap.call(t, "POST", "/api/command", `{"line":"/quit"}`, nil); code != http.StatusBadRequest {
		t.Errorf("/quit through the API: %d, want 400", code)
	}
	if code, _ := ap.call(t, "POST", "/api/msg", `{"to":"Nobody","text":"x"}`, nil); code != http.StatusBadRequest {
		t.Errorf("message to nobody: %d, want 400", code)
	}
	alice.Quit()
	bob.Quit()
}

// metricValue reads one sample from a scrape, -1 if absent.
func metricValue(t *testing.T, text, sample string) float64 {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("sample %s: %v", l, err)
			}
			return f
		}
	}
	return -1
}

var metricsLine = regexp.MustCompile(`\*\*\* metrics: (http://\S+/metrics)$`)

func scrapeMetrics(t *testing.T, n *e2e.Node) string {
	t.Helper()
	m := metricsLine.FindStringSubmatch(n.WaitLine("*** metrics: "))
	if m == nil {
		t.Fatal("no metrics address")
	}
	u, _ := url.Parse(m[1])
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestMetricsMoveDuringAThreeNodeChat(t *testing.T) {
	a := startNode(t, "A", "--metrics-addr", "127.0.0.1:0")
	b := startNode(t, "B", "--peer", a.Addr(), "--metrics-addr", "127.0.0.1:0")
	c := startNode(t, "C", "--peer", b.Addr(), "--metrics-addr", "127.0.0.1:0")
	for _, n := range []*e2e.Node{a, b, c} {
		e2e.WaitFor(t, e2e.Patience, func() bool {
			return metricValue(t, scrapeMetrics(t, n), `p2pchat_connections{state="connected"}`) == 2
		}, "a full mesh of three")
	}
	before := scrapeMetrics(t, b)
	for i := range 20 {
		a.Send(fmt.Sprintf("from A %d", i))
		c.Send(fmt.Sprintf("from C %d", i))
	}
	b.WaitLine("<A> from A 19")
	b.WaitLine("<C> from C 19")
	e2e.WaitFor(t, e2e.Patience, func() bool {
		after := scrapeMetrics(t, b)
		// In a full mesh B hears each of the 40 lines from its author
		// and once more relayed by the third node.
		return metricValue(t, after, `p2pchat_lines_received_total{path="live"}`)-metricValue(t, before, `p2pchat_lines_received_total{path="live"}`) >= 40 &&
			metricValue(t, after, `p2pchat_lines_duplicates_total{path="live"}`) > metricValue(t, before, `p2pchat_lines_duplicates_total{path="live"}`) &&
			metricValue(t, after, "p2pchat_commit_batch_events_count") > metricValue(t, before, "p2pchat_commit_batch_events_count") &&
			metricValue(t, after, "p2pchat_commit_seconds_sum") > metricValue(t, before, "p2pchat_commit_seconds_sum")
	}, "B's counters to move with the chat")
	after := scrapeMetrics(t, b)
	for _, s := range []string{"p2pchat_store_disk_write_seconds_total", "go_goroutines", "process_resident_memory_bytes", "p2pchat_send_queue_frames", `p2pchat_penalties_total{reason="flood"}`, "p2pchat_dial_failures_total", "p2pchat_catchup_missing_messages"} {
		if metricValue(t, after, s) < 0 {
			t.Errorf("scrape lacks %s", s)
		}
	}
	t.Logf("B after the chat: received %v, duplicates %v, relayed %v, commits %v",
		metricValue(t, after, `p2pchat_lines_received_total{path="live"}`), metricValue(t, after, `p2pchat_lines_duplicates_total{path="live"}`),
		metricValue(t, after, "p2pchat_lines_relayed_total"), metricValue(t, after, "p2pchat_commit_batch_events_count"))

	// C misses lines while it is down and catches up when it returns.
	dir := c.DataDir
	c.Quit()
	for i := range 10 {
		a.Send(fmt.Sprintf("while C was away %d", i))
	}
	b.WaitLine("<A> while C was away 9")
	c = restart(t, dir, "--metrics-addr", "127.0.0.1:0")
	c.WaitLine("<A> while C was away 9")
	e2e.WaitFor(t, e2e.Patience, func() bool {
		return metricValue(t, scrapeMetrics(t, c), "p2pchat_lines_caught_up_total") >= 10
	}, "C to count the lines it caught up")
	for _, n := range []*e2e.Node{a, b, c} {
		n.Quit()
	}
}
