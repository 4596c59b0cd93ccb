package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/internal/metrics"
	"github.com/p2pchat/p2pchat/internal/web"
	"github.com/p2pchat/p2pchat/peering"
	"github.com/p2pchat/p2pchat/repl"
	"github.com/p2pchat/p2pchat/store"
	"github.com/rs/zerolog"
)

// WebFlags are the run command's flags for the chat page and the metrics.
type WebFlags struct {
	HTTP               string `name:"http" help:"Serve the chat page and its API on HOST:PORT (off by default). The node prints the page's address with its secret token." placeholder:"HOST:PORT"`
	HTTPCert           string `name:"http-cert" help:"TLS certificate (PEM) for --http; with --http-key the page is served over HTTPS." type:"path" placeholder:"F"`
	HTTPKey            string `name:"http-key" help:"TLS private key (PEM) for --http-cert." type:"path" placeholder:"F"`
	HTTPInsecurePublic bool   `name:"http-insecure-public" help:"Allow --http on an address other machines reach, without TLS: the token and the chat then cross the network in clear."`
	MetricsAddr        string `name:"metrics-addr" help:"Serve Prometheus metrics at http://HOST:PORT/metrics (off by default)." placeholder:"HOST:PORT"`
}

// frontEnds is what the flags turned on: the page's hub and token, and the
// metrics registry, made before the node so that the log and the node can
// report to them from their first event.
type frontEnds struct {
	flags   WebFlags
	hub     *web.Hub
	dir     string // the node's data directory, where the token is kept
	token   string
	tls     *tls.Config
	metrics *metrics.Metrics
}

// prepare checks the flags and makes what the node reports to; the page's
// token is read or made in dir when the page starts.
func (f WebFlags) prepare(dir string) (*frontEnds, error) {
	fe := &frontEnds{flags: f}
	if (f.HTTPCert == "") != (f.HTTPKey == "") {
		return nil, usageError{"--http-cert and --http-key go together"}
	}
	if f.HTTP != "" {
		if err := web.CheckListen(f.HTTP, f.HTTPCert != "", f.HTTPInsecurePublic); err != nil {
			if errors.Is(err, web.ErrPublic) {
				return nil, usageError{fmt.Sprintf("--http %s: %v; use loopback (127.0.0.1:PORT), turn on TLS with --http-cert and --http-key, or pass --http-insecure-public", f.HTTP, err)}
			}
			return nil, usageError{fmt.Sprintf("--http %s: %v", f.HTTP, err)}
		}
		if f.HTTPCert != "" {
			cert, err := tls.LoadX509KeyPair(f.HTTPCert, f.HTTPKey)
			if err != nil {
				return nil, fmt.Errorf("--http-cert: %w", err)
			}
			fe.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		// The token is read or made once the node's directory exists
		// (start); the hub must be there before the node reports to it.
		fe.hub, fe.dir = web.NewHub(), dir
	}
	if f.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(f.MetricsAddr); err != nil {
			return nil, usageError{fmt.Sprintf("--metrics-addr %s: want HOST:PORT", f.MetricsAddr)}
		}
		fe.metrics = metrics.New()
	}
	return fe, nil
}

// onCommit is the log's commit hook: the metrics' when they are on.
func (fe *frontEnds) onCommit() func(int, time.Duration) {
	if fe.metrics == nil {
		return nil
	}
	return fe.metrics.ObserveCommit
}

// display is what the node shows to: the terminal, and every open page
// too when the page is on.
func (fe *frontEnds) display(terminal *repl.Display) peering.Display {
	if fe.hub == nil {
		return terminal
	}
	return teeDisplay{terminal, fe.hub}
}

// start serves the page and the metrics, and shows their addresses. The
// returned function stops both; it must be called.
func (fe *frontEnds) start(ctx context.Context, node chatNode, st *store.Store, shown *repl.Display, logger zerolog.Logger) (stop func(), err error) {
	var stops []func()
	stopAll := func() {
		for _, s := range stops {
			s()
		}
	}
	if fe.hub != nil {
		if fe.token, err = web.LoadToken(fe.dir); err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(fe.flags.HTTP)
		ln, err := net.Listen("tcp", fe.flags.HTTP)
		if err != nil {
			return nil, fmt.Errorf("--http: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		h := web.NewHandler(web.Config{
			Node: node, Hub: fe.hub, Token: fe.token, Host: host, Port: port, TLS: fe.tls != nil, Logger: logger,
		})
		stops = append(stops, serve(ctx, ln, h, fe.tls, logger))
		scheme := "http"
		if fe.tls != nil {
			scheme = "https"
		}
		shown.ShowSystem("web page: " + web.URL(scheme, net.JoinHostPort(printableHost(host), strconv.Itoa(port)), fe.token))
	}
	if fe.metrics != nil {
		ln, err := net.Listen("tcp", fe.flags.MetricsAddr)
		if err != nil {
			stopAll()
			return nil, fmt.Errorf("--metrics-addr: %w", err)
		}
		fe.metrics.Watch(node.Node, node.log, st)
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", fe.metrics.Handler())
		stops = append(stops, serve(ctx, ln, mux, nil, logger))
		host, _, _ := net.SplitHostPort(fe.flags.MetricsAddr)
		shown.ShowSystem(fmt.Sprintf("metrics: http://%s/metrics", net.JoinHostPort(printableHost(host), strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))))
	}
	return stopAll, nil
}

// printableHost is the host to print in an address: an empty or
// unspecified host listens everywhere, loopback included.
func printableHost(host string) string {
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return host
}

// serve runs an HTTP server on ln until the returned function is called.
// Request contexts end with it, so the page's event streams end too and
// shutting down does not wait for them.
func serve(ctx context.Context, ln net.Listener, h http.Handler, tlsConf *tls.Config, logger zerolog.Logger) (stop func()) {
	reqCtx, cancel := context.WithCancel(ctx)
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		if tlsConf != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			logger.Error().Err(err).Str("addr", ln.Addr().String()).Msg("http server stopped")
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			shutdownCtx, done := context.WithTimeout(context.Background(), 2*time.Second)
			defer done()
			if err := srv.Shutdown(shutdownCtx); err != nil {
				srv.Close()
			}
			wg.Wait()
		})
	}
}

// teeDisplay shows what the node reports on several displays.
type teeDisplay []peering.Display

func (t teeDisplay) ShowChat(at time.Time, name, text string) {
	for _, d := range t {
		d.ShowChat(at, name, text)
	}
}

func (t teeDisplay) ShowPrivate(at time.Time, name, text string) {
	for _, d := range t {
		d.ShowPrivate(at, name, text)
	}
}

func (t teeDisplay) ShowPrivateTo(at time.Time, to, name, text string) {
	for _, d := range t {
		d.ShowPrivateTo(at, to, name, text)
	}
}

func (t teeDisplay) ShowSystem(text string) {
	for _, d := range t {
		d.ShowSystem(text)
	}
}

// ChatsBefore pages the chat history for the web page.
func (n chatNode) ChatsBefore(before uint64, count int) ([]web.Line, error) {
	events, err := n.log.ChatsBefore(before, count)
	out := make([]web.Line, len(events))
	for i, e := range events {
		chat := e.Body.(eventlog.Chat)
		out[i] = web.Line{Seq: e.Seq, Time: chat.OriginTime, Name: chat.Name, Text: chat.Text}
	}
	return out, err
}

var _ web.Node = chatNode{}
