package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/internal/metrics"
	"github.com/p2pchat/p2pchat/peering"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeNode struct{ s peering.Stats }

func (n *fakeNode) Stats() peering.Stats { return n.s }

type fakeLog struct{}

func (fakeLog) SyncState() ([]eventlog.OriginState, error) {
	return []eventlog.OriginState{
		{Watermark: 3, Max: 20, Missing: []eventlog.Range{{From: 4, To: 6}, {From: 10, To: 10}}},
		{Watermark: 7, Max: 7},
	}, nil
}

type fakeDisk struct{}

func (fakeDisk) DiskWriteTime() time.Duration { return 1500 * time.Millisecond }

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAScrapeReadsTheNodeAndTheCommits(t *testing.T) {
	m := metrics.New()
	node := &fakeNode{s: peering.Stats{
		Received: 10, Duplicates: 4, CaughtUp: 7, CaughtUpDuplicates: 2, Relayed: 5, Sent: 3,
		DialFailures: 2, Forked: 8, PenaltiesFlood: 1, PenaltiesViolation: 6, Connected: 2, Open: 3, Dialing: 1, SendQueued: 9,
	}}
	m.Watch(node, fakeLog{}, fakeDisk{})
	m.ObserveCommit(1, 2*time.Millisecond)
	m.ObserveCommit(300, 9*time.Millisecond)

	text := scrape(t, m.Handler())
	for _, want := range []string{
		`p2pchat_connections{state="connected"} 2`,
		`p2pchat_connections{state="handshaking"} 1`,
		`p2pchat_dials_in_progress 1`,
		`p2pchat_lines_received_total{path="live"} 10`,
		`p2pchat_lines_received_total{path="catchup"} 7`,
		`p2pchat_lines_duplicates_total{path="live"} 4`,
		`p2pchat_lines_relayed_total 5`,
		`p2pchat_lines_sent_total 3`,
		`p2pchat_lines_caught_up_total 5`,
		`p2pchat_catchup_missing_messages 4`,
		`p2pchat_send_queue_frames 9`,
		`p2pchat_penalties_total{reason="flood"} 1`,
		`p2pchat_penalties_total{reason="violation"} 6`,
		`p2pchat_dial_failures_total 2`,
		`p2pchat_lines_forked_total 8`,
		`p2pchat_store_disk_write_seconds_total 1.5`,
		`p2pchat_commit_batch_events_count 2`,
		`p2pchat_commit_batch_events_sum 301`,
		`p2pchat_commit_seconds_count 2`,
		`go_goroutines `,
		`process_open_fds `,
	} {
		if !strings.HasSuffix(want, " ") {
			want += "\n" // the whole value, not a prefix of it
		}
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}

	node.s.Received = 11
	if text := scrape(t, m.Handler()); !strings.Contains(text, `p2pchat_lines_received_total{path="live"} 11`+"\n") {
		t.Errorf("a second scrape does not read the counters again")
	}
}
