package peering

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/p2pchat/p2pchat/eventlog"
)

// ALPNProtocol names the protocol in the TLS handshake, so that a client of
// something else fails there instead of at the first frame.
const ALPNProtocol = "p2pchat/1"

// NewCertificate returns a self-signed certificate for the node's key. No CA
// vouches for it: the certificate only carries the key into the handshake,
// where TLS 1.3's CertificateVerify proves that the peer holds it.
func NewCertificate(key ed25519.PrivateKey) (tls.Certificate, error) {
	if len(key) != ed25519.PrivateKeySize {
		return tls.Certificate{}, fmt.Errorf("new certificate: ed25519 private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("new certificate: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "p2pchat"},
		// An hour back absorbs clock skew between peers.
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(10, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	pub := key.Public()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("new certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("new certificate: parse: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// ServerConfig returns the TLS configuration for accepted connections: TLS
// 1.3 only, and the client must present a certificate with an ed25519 key,
// which becomes its node ID.
func ServerConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates:          []tls.Certificate{cert},
		MinVersion:            tls.VersionTLS13,
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: verifyPeerCertificate,
		VerifyConnection:      verifyALPN,
		NextProtos:            []string{ALPNProtocol},
		// Every connection proves possession of the key afresh instead of
		// inheriting an identity from an earlier session.
		SessionTicketsDisabled: true,
	}
}

// ClientConfig returns the TLS configuration for dialed connections. The
// usual chain verification is off because there is no CA; the same check as
// on the server takes its place, and the dialer compares PeerID with the node
// it meant to reach.
func ClientConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates:          []tls.Certificate{cert},
		MinVersion:            tls.VersionTLS13,
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: verifyPeerCertificate,
		VerifyConnection:      verifyALPN,
		NextProtos:            []string{ALPNProtocol},
	}
}

// verifyPeerCertificate accepts exactly one certificate with an ed25519 key.
// Validity dates and the self-signature are not checked: the key is the
// identity, and the handshake has already proven the peer holds it.
func verifyPeerCertificate(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	if len(rawCerts) != 1 {
		return fmt.Errorf("peer presented %d certificates, want exactly 1", len(rawCerts))
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return fmt.Errorf("peer certificate: %w", err)
	}
	if _, ok := cert.PublicKey.(ed25519.PublicKey); !ok {
		return fmt.Errorf("peer certificate has key type %s, want Ed25519", cert.PublicKeyAlgorithm)
	}
	return nil
}

// verifyALPN refuses a peer that did not agree on the protocol, which Go's
// TLS allows when the client offers no ALPN at all.
func verifyALPN(cs tls.ConnectionState) error {
	if cs.NegotiatedProtocol != ALPNProtocol {
		return fmt.Errorf("peer did not negotiate protocol %q", ALPNProtocol)
	}
	return nil
}

// PeerID returns the node ID that the peer proved in the handshake: the
// ed25519 key of its only certificate.
func PeerID(cs tls.ConnectionState) (eventlog.NodeID, error) {
	if !cs.HandshakeComplete {
		return eventlog.NodeID{}, errors.New("peer id: handshake not complete")
	}
	if len(cs.PeerCertificates) != 1 {
		return eventlog.NodeID{}, fmt.Errorf("peer id: peer presented %d certificates, want exactly 1", len(cs.PeerCertificates))
	}
	pub, ok := cs.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return eventlog.NodeID{}, fmt.Errorf("peer id: certificate has key type %s, want Ed25519", cs.PeerCertificates[0].PublicKeyAlgorithm)
	}
	id, err := eventlog.IDFromKey(pub)
	if err != nil {
		return eventlog.NodeID{}, fmt.Errorf("peer id: %w", err)
	}
	return id, nil
}
