package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files.
func selfSigned(t *testing.T) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "p2pchat test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

func TestThePageOverTLS(t *testing.T) {
	certFile, keyFile, cert := selfSigned(t)
	alice := startNode(t, "Alice", "--http", "127.0.0.1:0", "--http-cert", certFile, "--http-key", keyFile)
	p := webPage(t, alice)
	if !strings.HasPrefix(p.base, "https://") {
		t.Fatalf("page address %s: want https", p.base)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	resp, err := client.Get(p.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c := resp.Cookies(); resp.StatusCode != http.StatusSeeOther || len(c) != 1 || !c[0].Secure || !c[0].HttpOnly {
		t.Fatalf("token exchange over TLS: %d, cookies %v; want 303 and a Secure HttpOnly cookie", resp.StatusCode, c)
	}
	req, _ := http.NewRequest("POST", p.base+"/api/send", strings.NewReader(`{"text":"over TLS"}`))
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", p.base)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("send over TLS: %d", resp.StatusCode)
	}
	alice.WaitLine("<Alice> over TLS")
	alice.Quit()
}

func TestHTTPFlagsThatDoNotFit(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--http", "127.0.0.1:0", "--http-cert", certFile}, exitUsage, "go together"},
		{[]string{"--http", "nonsense"}, exitUsage, "--http nonsense"},
		{[]string{"--http", "0.0.0.0:0"}, exitUsage, "--http-insecure-public"},
		{[]string{"--http", ":0"}, exitUsage, "--http-insecure-public"},
		{[]string{"--metrics-addr", "nonsense"}, exitUsage, "--metrics-addr nonsense"},
		{[]string{"--http", "127.0.0.1:0", "--http-cert", keyFile, "--http-key", keyFile}, exitError, "--http-cert"},
	} {
		args := append([]string{"--uname", "Alice", "--port", "0", "--data-dir", newDataDir(t), "--headless"}, c.args...)
		res := p2pchat.Run(t, args...)
		if res.Code != c.code || !strings.Contains(res.Stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want %d naming %q", c.args, res.Code, res.Stderr, c.code, c.want)
		}
	}
}
