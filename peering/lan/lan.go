// Package lan finds other nodes on the local network with multicast DNS
// (RFC 6762 and DNS-SD, RFC 6763), so that two nodes on one LAN meet
// without anyone typing an address.
//
// Each node advertises the service _p2pchat._tcp on every interface that is
// up, can multicast and is not a loopback, and asks the same interfaces
// who else offers it: at once on start, then at growing intervals. What it
// finds is handed to Config.Found; the caller decides whether to dial.
//
// What an advertisement says. On an open network: the node ID, in the TXT
// record, so that a node does not dial itself or a peer it is connected
// to already. On a private network (Config.NetworkKey) an outsider must
// learn nothing about the network from the LAN, so the record carries only
// a tag, an HMAC of a fixed label under the key, and an instance name
// derived from the key and the node ID; a node with another key or none
// sees a tag it cannot match and ignores the record. The tag is the same for
// every node of one network, so an outsider can tell that two
// advertisements belong to one network, but not which network, nor any
// node's ID or name.
//
// The protocol work is github.com/hashicorp/mdns. It binds its multicast
// listener without naming an interface, so the host needs a route for
// multicast (any host with a default route has one).
package lan

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/mdns"
	"github.com/rs/zerolog"
)

// Service is the DNS-SD service type nodes advertise and browse.
const Service = "_p2pchat._tcp"

// The TXT record's keys.
const (
	txtVersion = "v=1"
	txtID      = "id="
	txtTag     = "tag="
)

// Config says what to advertise and where to report what is found.
type Config struct {
	// ID is this node's ID in hex.
	ID string
	// Port is the TCP port the node listens on.
	Port int
	// Advertise is false for a node that listens on loopback only: others
	// could not reach it, so it only browses.
	Advertise bool
	// NetworkKey, when set, replaces the ID in the advertisement with a
	// keyed tag, and only records with the same tag are reported.
	NetworkKey []byte
	// Found receives each node found; it must not block for long. It may
	// see the same node again on every round.
	Found func(Peer)
	// FirstInterval is the pause after the first query round; it doubles
	// after each round up to MaxInterval.
	FirstInterval, MaxInterval time.Duration
	// Logger receives diagnostics.
	Logger zerolog.Logger
}

// Peer is a node found on the LAN.
type Peer struct {
	// ID is the node ID in hex, or "" on a private network, where the
	// advertisement does not carry it.
	ID string
	// Addr is HOST:PORT to dial.
	Addr string
}

// Run advertises and browses until ctx ends. It returns an error only when
// nothing could be set up at all (no usable interface is not an error: it
// waits and looks again, since interfaces come and go).
func Run(ctx context.Context, cfg Config) error {
	if cfg.FirstInterval <= 0 {
		cfg.FirstInterval = time.Second
	}
	if cfg.MaxInterval <= 0 {
		cfg.MaxInterval = time.Minute
	}
	ad := newAdvert(cfg)
	quiet := log.New(io.Discard, "", 0) // the library's own log lines say nothing we act on

	var servers []*mdns.Server
	defer func() {
		for _, s := range servers {
			s.Shutdown()
		}
	}()
	advertised := map[string]bool{}

	wait := cfg.FirstInterval
	for {
		ifaces := usableInterfaces()
		if cfg.Advertise {
			for _, ifi := range ifaces {
				if advertised[ifi.Name] {
					continue
				}
				s, err := serve(ifi, ad, quiet)
				if err != nil {
					cfg.Logger.Debug().Err(err).Str("interface", ifi.Name).Msg("mdns: not advertising")
					continue
				}
				advertised[ifi.Name] = true
				servers = append(servers, s)
			}
		}
		browse(ctx, ifaces, ad, cfg, quiet)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, cfg.MaxInterval)
	}
}

// advert is what this node says about itself and how it recognizes its
// own network's records.
type advert struct {
	instance string   // unique on the LAN, and this node's own
	txt      []string // the TXT record
	tag      string   // "" on an open network
	id       string
	port     int
}

func newAdvert(cfg Config) advert {
	a := advert{id: cfg.ID, port: cfg.Port}
	if len(cfg.NetworkKey) == 0 {
		a.instance = "p2pchat-" + cfg.ID[:min(16, len(cfg.ID))]
		a.txt = []string{txtVersion, txtID + cfg.ID}
		return a
	}
	a.tag = keyed(cfg.NetworkKey, "p2pchat lan tag v1")
	a.instance = "p2pchat-" + keyed(cfg.NetworkKey, "p2pchat lan instance v1 "+cfg.ID)
	a.txt = []string{txtVersion, txtTag + a.tag}
	return a
}

// keyed is a 16-byte HMAC-SHA256 of label under key, in hex.
func keyed(key []byte, label string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// peer turns a record found on the LAN into a Peer, or reports why it is
// not one of ours to dial: another service, another network, this node.
func (a advert) peer(e *mdns.ServiceEntry) (Peer, error) {
	if !strings.HasPrefix(e.Name, "p2pchat-") {
		return Peer{}, fmt.Errorf("%q is not a p2pchat instance", e.Name)
	}
	if strings.HasPrefix(e.Name, a.instance+".") {
		return Peer{}, errSelf
	}
	fields := map[string]string{}
	for _, f := range e.InfoFields {
		if k, v, ok := strings.Cut(f, "="); ok {
			fields[k] = v
		}
	}
	if fields["v"] != "1" {
		return Peer{}, fmt.Errorf("%q: unknown version %q", e.Name, fields["v"])
	}
	if e.Port < 1 || e.Port > 65535 {
		return Peer{}, fmt.Errorf("%q: port %d", e.Name, e.Port)
	}
	var p Peer
	switch {
	case a.tag != "":
		if !hmac.Equal([]byte(fields["tag"]), []byte(a.tag)) {
			return Peer{}, fmt.Errorf("%q: another network", e.Name)
		}
	default:
		if fields["tag"] != "" || !validID(fields["id"]) {
			return Peer{}, fmt.Errorf("%q: not an open-network record", e.Name)
		}
		if fields["id"] == a.id {
			return Peer{}, errSelf
		}
		p.ID = fields["id"]
	}
	switch {
	case e.AddrV4 != nil:
		p.Addr = net.JoinHostPort(e.AddrV4.String(), strconv.Itoa(e.Port))
	case e.AddrV6IPAddr != nil:
		p.Addr = net.JoinHostPort(e.AddrV6IPAddr.String(), strconv.Itoa(e.Port))
	default:
		return Peer{}, fmt.Errorf("%q: no address", e.Name)
	}
	return p, nil
}

var errSelf = errors.New("this node")

func validID(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// usableInterfaces lists the interfaces worth advertising and browsing on.
func usableInterfaces() []net.Interface {
	all, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []net.Interface
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		if len(interfaceIPs(ifi)) > 0 {
			out = append(out, ifi)
		}
	}
	return out
}

// interfaceIPs are the unicast addresses others on ifi's link can reach.
func interfaceIPs(ifi net.Interface) []net.IP {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsMulticast() || ipn.IP.IsUnspecified() {
			continue
		}
		if ipn.IP.To4() == nil && ipn.IP.IsLinkLocalUnicast() {
			continue // would need a zone that the record cannot carry
		}
		ips = append(ips, ipn.IP)
	}
	return ips
}

// serve answers queries on ifi with this node's record.
func serve(ifi net.Interface, ad advert, quiet *log.Logger) (*mdns.Server, error) {
	zone, err := mdns.NewMDNSService(ad.instance, Service, "", ad.instance+".local.", ad.port, interfaceIPs(ifi), ad.txt)
	if err != nil {
		return nil, err
	}
	iface := ifi
	return mdns.NewServer(&mdns.Config{Zone: zone, Iface: &iface, Logger: quiet})
}

// browse asks every interface at once who offers the service, and reports
// what it hears for about a second.
func browse(ctx context.Context, ifaces []net.Interface, ad advert, cfg Config, quiet *log.Logger) {
	var wg sync.WaitGroup
	for _, ifi := range ifaces {
		entries := make(chan *mdns.ServiceEntry, 32)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for e := range entries {
				p, err := ad.peer(e)
				if err != nil {
					if !errors.Is(err, errSelf) {
						cfg.Logger.Debug().Err(err).Msg("mdns: record ignored")
					}
					continue
				}
				cfg.Found(p)
			}
		}()
		go func() {
			defer wg.Done()
			defer close(entries)
			iface := ifi
			params := &mdns.QueryParam{
				Service:     Service,
				Domain:      "local",
				Timeout:     time.Second,
				Interface:   &iface,
				Entries:     entries,
				DisableIPv6: true,
				Logger:      quiet,
			}
			if err := mdns.QueryContext(ctx, params); err != nil && ctx.Err() == nil {
				cfg.Logger.Debug().Err(err).Str("interface", iface.Name).Msg("mdns: query failed")
			}
		}()
	}
	wg.Wait()
}
