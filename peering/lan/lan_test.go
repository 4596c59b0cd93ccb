package lan

import (
	"net"
	"strings"
	"testing"

	"github.com/hashicorp/mdns"
)

const (
	aliceID = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	bobID   = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// entry is the record a node with ad would be found as.
func entry(ad advert, ip string) *mdns.ServiceEntry {
	return &mdns.ServiceEntry{
		Name:       ad.instance + "." + Service + ".local.",
		AddrV4:     net.ParseIP(ip),
		Port:       ad.port,
		InfoFields: ad.txt,
	}
}

func TestRecordsFoundOnTheLAN(t *testing.T) {
	key := []byte("the key of our network")
	openBob := newAdvert(Config{ID: bobID, Port: 7000})
	keyedBob := newAdvert(Config{ID: bobID, Port: 7000, NetworkKey: key})
	otherBob := newAdvert(Config{ID: bobID, Port: 7000, NetworkKey: []byte("another network's key")})
	badID := openBob
	badID.txt = []string{txtVersion, txtID + "BOB"}
	future := openBob
	future.txt = []string{"v=2", txtID + bobID}
	noPort := openBob
	noPort.port = 0

	tests := []struct {
		name   string
		self   Config
		found  *mdns.ServiceEntry
		want   Peer
		reason string // in the error, when the record is not a peer
	}{
		{"open network names the ID", Config{ID: aliceID, Port: 7000}, entry(openBob, "10.0.0.2"), Peer{ID: bobID, Addr: "10.0.0.2:7000"}, ""},
		{"own record", Config{ID: bobID, Port: 7000}, entry(openBob, "10.0.0.2"), Peer{}, "this node"},
		{"own ID under another instance", Config{ID: bobID, Port: 7001}, entry(func() advert { a := openBob; a.instance = "p2pchat-x"; return a }(), "10.0.0.2"), Peer{}, "this node"},
		{"same network key", Config{ID: aliceID, Port: 7000, NetworkKey: key}, entry(keyedBob, "10.0.0.2"), Peer{Addr: "10.0.0.2:7000"}, ""},
		{"other network key", Config{ID: aliceID, Port: 7000, NetworkKey: key}, entry(otherBob, "10.0.0.2"), Peer{}, "another network"},
		{"keyed node ignores open records", Config{ID: aliceID, Port: 7000, NetworkKey: key}, entry(openBob, "10.0.0.2"), Peer{}, "another network"},
		{"open node ignores keyed records", Config{ID: aliceID, Port: 7000}, entry(keyedBob, "10.0.0.2"), Peer{}, "not an open-network record"},
		{"malformed ID", Config{ID: aliceID, Port: 7000}, entry(badID, "10.0.0.2"), Peer{}, "not an open-network record"},
		{"unknown version", Config{ID: aliceID, Port: 7000}, entry(future, "10.0.0.2"), Peer{}, "unknown version"},
		{"no port", Config{ID: aliceID, Port: 7000}, entry(noPort, "10.0.0.2"), Peer{}, "port"},
		{"no address", Config{ID: aliceID, Port: 7000}, entry(openBob, ""), Peer{}, "no address"},
		{"another service's instance", Config{ID: aliceID, Port: 7000}, &mdns.ServiceEntry{Name: "printer._ipp._tcp.local.", AddrV4: net.ParseIP("10.0.0.9"), Port: 631}, Peer{}, "not a p2pchat instance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newAdvert(tt.self).peer(tt.found)
			switch {
			case tt.reason == "" && err != nil:
				t.Fatalf("peer: %v, want %+v", err, tt.want)
			case tt.reason != "" && (err == nil || !strings.Contains(err.Error(), tt.reason)):
				t.Fatalf("peer = %+v, %v; want an error saying %q", got, err, tt.reason)
			case got != tt.want:
				t.Fatalf("peer = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestKeyedAdvertisementCarriesNoID(t *testing.T) {
	ad := newAdvert(Config{ID: bobID, Port: 7000, NetworkKey: []byte("the key of our network")})
	for _, s := range append([]string{ad.instance}, ad.txt...) {
		if strings.Contains(s, bobID[:8]) {
			t.Errorf("keyed advertisement %q carries the node ID", s)
		}
	}
	other := newAdvert(Config{ID: aliceID, Port: 7000, NetworkKey: []byte("the key of our network")})
	if other.instance == ad.instance {
		t.Errorf("two nodes of one network share the instance name %q", ad.instance)
	}
	if other.tag != ad.tag {
		t.Errorf("two nodes of one network have different tags %q and %q", ad.tag, other.tag)
	}
}
