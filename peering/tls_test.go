package peering

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
	"github.com/p2pchat/p2pchat/peering/wire/wiretest"
	"go.uber.org/goleak"
)

func tlsTestCert(t *testing.T, key ed25519.PrivateKey) tls.Certificate {
	t.Helper()
	cert, err := NewCertificate(key)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// tlsTestForeignCert returns a self-signed certificate for a key of another
// kind than ed25519, as a non-p2pchat client would present.
func tlsTestForeignCert(t *testing.T, key crypto.Signer) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "intruder"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsTestSide is what one end of a handshake saw.
type tlsTestSide struct {
	state tls.ConnectionState
	err   error
}

// tlsTestHandshake runs one handshake over real TCP on loopback and returns
// what each side saw, after closing everything.
func tlsTestHandshake(t *testing.T, server, client *tls.Config) (srv, cli tlsTestSide) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	done := make(chan tlsTestSide, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- tlsTestSide{err: err}
			return
		}
		defer raw.Close()
		conn := tls.Server(raw, server)
		err = conn.HandshakeContext(ctx)
		done <- tlsTestSide{state: conn.ConnectionState(), err: err}
	}()

	d := tls.Dialer{Config: client}
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err == nil {
		cli.state = conn.(*tls.Conn).ConnectionState()
		// In TLS 1.3 the client is done before the server has judged its
		// certificate, so wait for the server's verdict before closing.
		srv = <-done
		conn.Close()
		return srv, cli
	}
	cli.err = err
	return <-done, cli
}

func tlsTestID(t *testing.T, key ed25519.PrivateKey) eventlog.NodeID {
	t.Helper()
	id, err := eventlog.IDFromKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestHandshakeShowsEachSideTheOthersKey(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	serverKey, clientKey := wiretest.Key(1), wiretest.Key(2)
	srv, cli := tlsTestHandshake(t,
		ServerConfig(tlsTestCert(t, serverKey)), ClientConfig(tlsTestCert(t, clientKey)))
	if srv.err != nil || cli.err != nil {
		t.Fatalf("handshake failed: server %v, client %v", srv.err, cli.err)
	}

	for _, tt := range []struct {
		side string
		cs   tls.ConnectionState
		want eventlog.NodeID
	}{
		{side: "server", cs: srv.state, want: tlsTestID(t, clientKey)},
		{side: "client", cs: cli.state, want: tlsTestID(t, serverKey)},
	} {
		got, err := PeerID(tt.cs)
		if err != nil || got != tt.want {
			t.Errorf("%s: PeerID() = %s, %v; want %s", tt.side, got.Short(), err, tt.want.Short())
		}
		if tt.cs.Version != tls.VersionTLS13 || tt.cs.NegotiatedProtocol != ALPNProtocol {
			t.Errorf("%s: version %x, protocol %q; want TLS 1.3 and %q", tt.side, tt.cs.Version, tt.cs.NegotiatedProtocol, ALPNProtocol)
		}
	}
}

func TestServerRefusesClientsWithoutAnEd25519Certificate(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	own := tlsTestCert(t, wiretest.Key(2))
	twice := tls.Certificate{Certificate: [][]byte{own.Certificate[0], own.Certificate[0]}, PrivateKey: own.PrivateKey}

	tests := []struct {
		name   string
		client *tls.Config
		err    string
	}{
		{name: "RSA certificate", client: tlsTestClientWith(tlsTestForeignCert(t, rsaKey)), err: "key type RSA"},
		{name: "ECDSA certificate", client: tlsTestClientWith(tlsTestForeignCert(t, ecKey)), err: "key type ECDSA"},
		{name: "two certificates", client: tlsTestClientWith(twice), err: "2 certificates"},
		{name: "no certificate", client: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPNProtocol}}, err: "didn't provide a certificate"},
		{name: "no protocol offered", client: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{own}}, err: "protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := tlsTestHandshake(t, ServerConfig(tlsTestCert(t, wiretest.Key(1))), tt.client)
			if srv.err == nil || !strings.Contains(srv.err.Error(), tt.err) {
				t.Fatalf("server handshake error = %v, want one about %q", srv.err, tt.err)
			}
			t.Logf("server refused: %v", srv.err)
		})
	}
}

func TestClientRefusesServersWithoutAnEd25519CertificateOrTLS13(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tls12 := ServerConfig(tlsTestCert(t, wiretest.Key(1)))
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12

	tests := []struct {
		name   string
		server *tls.Config
		err    string
	}{
		{name: "ECDSA certificate", server: &tls.Config{
			Certificates: []tls.Certificate{tlsTestForeignCert(t, ecKey)},
			ClientAuth:   tls.RequireAnyClientCert,
			NextProtos:   []string{ALPNProtocol},
		}, err: "key type ECDSA"},
		{name: "TLS 1.2 only", server: tls12, err: "version"},
		{name: "other protocol", server: &tls.Config{
			Certificates: []tls.Certificate{tlsTestCert(t, wiretest.Key(1))},
			ClientAuth:   tls.RequireAnyClientCert,
			NextProtos:   []string{"p2pchat/2"},
		}, err: "protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, cli := tlsTestHandshake(t, tt.server, ClientConfig(tlsTestCert(t, wiretest.Key(2))))
			if cli.err == nil || !strings.Contains(cli.err.Error(), tt.err) {
				t.Fatalf("client handshake error = %v, want one about %q", cli.err, tt.err)
			}
			t.Logf("client refused: %v", cli.err)
		})
	}
}

func tlsTestClientWith(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true,
		Certificates:       []tls.Certificate{cert},
		NextProtos:         []string{ALPNProtocol},
	}
}

func TestPeerIDNeedsACompleteHandshake(t *testing.T) {
	if _, err := PeerID(tls.ConnectionState{}); err == nil {
		t.Fatal("PeerID() of an empty state succeeded")
	}
}

func TestNewCertificateCarriesTheKeyForTenYears(t *testing.T) {
	key := wiretest.Key(1)
	before := time.Now()
	cert := tlsTestCert(t, key)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := leaf.PublicKey.(ed25519.PublicKey); !ok || !pub.Equal(key.Public()) {
		t.Fatalf("certificate key = %v, want the node's key", leaf.PublicKey)
	}
	if leaf.Subject.CommonName != "p2pchat" || leaf.IsCA {
		t.Fatalf("subject %q, CA %v; want p2pchat, not a CA", leaf.Subject.CommonName, leaf.IsCA)
	}
	if leaf.NotBefore.After(before.Add(-59*time.Minute)) || leaf.NotAfter.Before(before.AddDate(10, 0, -1)) {
		t.Fatalf("valid %v .. %v, want from an hour ago for ten years", leaf.NotBefore, leaf.NotAfter)
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Fatalf("certificate is not self-signed: %v", err)
	}
	if other := tlsTestCert(t, key); other.Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("two certificates share a serial number")
	}
}

func TestNewCertificateRefusesAMalformedKey(t *testing.T) {
	if _, err := NewCertificate(ed25519.PrivateKey(make([]byte, 10))); err == nil {
		t.Fatal("NewCertificate() of a 10-byte key succeeded")
	}
}
