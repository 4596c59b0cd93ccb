// Package metrics serves a node's health to Prometheus: connections,
// lines moved, commits, catch-up and penalties, beside the standard Go and
// process metrics of client_golang.
//
// Counters that the node keeps anyway (peering.Stats) are read when
// Prometheus scrapes, by a Collector, rather than pushed through the code
// on every line: the hot paths stay as they are, and a scrape costs one
// Stats call and one read of the log's sync state. Only what the node does
// not count itself, the size and duration of each commit, is observed as
// it happens, through eventlog's OnCommit hook, into histograms.
//
// Commit latency is the time of the whole write transaction, fsync
// included; the time bbolt spent writing and syncing the file is exported
// apart as a running sum (store.DiskWriteTime), since bbolt reports it
// only in total.
package metrics

import (
	"net/http"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Node is what the collector reads from the network side.
type Node interface {
	Stats() peering.Stats
}

// Log is what the collector reads from the event log: which messages of
// each origin are known to be missing.
type Log interface {
	SyncState() ([]eventlog.OriginState, error)
}

// Disk reports the time spent writing the database file.
type Disk interface {
	DiskWriteTime() time.Duration
}

// Metrics holds a node's registry. Its zero value is not usable; use New.
type Metrics struct {
	reg           *prometheus.Registry
	commitEvents  prometheus.Histogram
	commitSeconds prometheus.Histogram
}

// New returns metrics with the commit histograms and the Go and process
// collectors registered; Watch adds the node's own.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		commitEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "p2pchat_commit_batch_events",
			Help:    "Events written per commit of the event log (group commit batch size).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13), // 1 .. 4096, the batch cap
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "p2pchat_commit_seconds",
			Help:    "Duration of each commit of the event log, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs .. 3.3s
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.commitEvents, m.commitSeconds,
	)
	return m
}

// ObserveCommit records one commit; it fits eventlog.Options.OnCommit.
func (m *Metrics) ObserveCommit(events int, took time.Duration) {
	m.commitEvents.Observe(float64(events))
	m.commitSeconds.Observe(took.Seconds())
}

// Watch registers the collector that reads node, log and disk at scrape
// time. Call it once.
func (m *Metrics) Watch(node Node, log Log, disk Disk) {
	m.reg.MustRegister(&collector{node: node, log: log, disk: disk})
}

// Handler serves the registry in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

var (
	descConnections = prometheus.NewDesc("p2pchat_connections",
		"Connections by state: connected (authenticated peers) or handshaking (TCP open, no peer yet).", []string{"state"}, nil)
	descDialing = prometheus.NewDesc("p2pchat_dials_in_progress",
		"Dials under way.", nil, nil)
	descReceived = prometheus.NewDesc("p2pchat_lines_received_total",
		"Signed messages (chat lines, renames, private messages and their acknowledgements) that arrived, live or in answer to catch-up.", []string{"path"}, nil)
	descDuplicates = prometheus.NewDesc("p2pchat_lines_duplicates_total",
		"Arrived messages dropped because the log held them already.", []string{"path"}, nil)
	descRelayed = prometheus.NewDesc("p2pchat_lines_relayed_total",
		"Frames queued to peers to pass on others' messages.", nil, nil)
	descSent = prometheus.NewDesc("p2pchat_lines_sent_total",
		"Frames queued to peers for this node's own messages.", nil, nil)
	descCaughtUp = prometheus.NewDesc("p2pchat_lines_caught_up_total",
		"Messages new to this node that catch-up brought.", nil, nil)
	descMissing = prometheus.NewDesc("p2pchat_catchup_missing_messages",
		"Catch-up lag: messages known to exist (below an origin's highest seq held) that the log lacks.", nil, nil)
	descQueue = prometheus.NewDesc("p2pchat_send_queue_frames",
		"Frames waiting in the peers' send queues, summed over peers.", nil, nil)
	descPenalties = prometheus.NewDesc("p2pchat_penalties_total",
		"Penalties laid on peers' node IDs, by reason.", []string{"reason"}, nil)
	descDialFailures = prometheus.NewDesc("p2pchat_dial_failures_total",
		"Dials and handshakes that failed.", nil, nil)
	descForked = prometheus.NewDesc("p2pchat_lines_forked_total",
		"Signed messages refused because their origin signed another history.", nil, nil)
	descDiskWrite = prometheus.NewDesc("p2pchat_store_disk_write_seconds_total",
		"Time bbolt spent writing committed pages and syncing the file.", nil, nil)
	descScrapeErrors = prometheus.NewDesc("p2pchat_metrics_read_errors",
		"1 if this scrape could not read the log's sync state.", nil, nil)
)

// collector reads the node's own counters at scrape time.
type collector struct {
	node Node
	log  Log
	disk Disk
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	s := c.node.Stats()
	gauge(descConnections, float64(s.Connected), "connected")
	gauge(descConnections, float64(max(0, s.Open-s.Connected)), "handshaking")
	gauge(descDialing, float64(s.Dialing))
	counter(descReceived, s.Received, "live")
	counter(descReceived, s.CaughtUp, "catchup")
	counter(descDuplicates, s.Duplicates, "live")
	counter(descDuplicates, s.CaughtUpDuplicates, "catchup")
	counter(descRelayed, s.Relayed)
	counter(descSent, s.Sent)
	counter(descCaughtUp, s.CaughtUp-s.CaughtUpDuplicates)
	gauge(descQueue, float64(s.SendQueued))
	counter(descPenalties, s.PenaltiesFlood, "flood")
	counter(descPenalties, s.PenaltiesViolation, "violation")
	counter(descDialFailures, s.DialFailures)
	counter(descForked, s.Forked)
	ch <- prometheus.MustNewConstMetric(descDiskWrite, prometheus.CounterValue, c.disk.DiskWriteTime().Seconds())

	origins, err := c.log.SyncState()
	failed := 0.0
	if err != nil {
		failed = 1
	}
	gauge(descScrapeErrors, failed)
	if err == nil {
		var missing uint64
		for _, o := range origins {
			for _, r := range o.Missing {
				missing += r.To - r.From + 1
			}
		}
		gauge(descMissing, float64(missing))
	}
}
