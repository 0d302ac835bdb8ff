package certfile

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dirigent/internal/testpeer"
)

// served is the certificate a TLS server on cfg presents to a client.
func served(t *testing.T, cfg *tls.Config) []byte {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

func readFile(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReloadServesTheRenewedCertificate(t *testing.T) {
	dir := t.TempDir()
	cert, key := testpeer.SelfSigned(t, dir)
	p, err := Load(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.ServerConfig()
	first := served(t, cfg)
	if _, err := x509.ParseCertificate(first); err != nil {
		t.Fatal(err)
	}

	// Renewed in place: the same files, a new certificate and key.
	renewed := t.TempDir()
	newCert, newKey := testpeer.SelfSigned(t, renewed)
	for from, to := range map[string]string{newCert: cert, newKey: key} {
		if err := os.WriteFile(to, readFile(t, from), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(served(t, cfg), first) {
		t.Error("the new files were served before the reload")
	}
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	second := served(t, cfg)
	if bytes.Equal(second, first) {
		t.Error("the old certificate is still served after the reload")
	}

	// A broken file: the reload says so, and the certificate stays.
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err == nil {
		t.Error("a broken key was taken")
	}
	if !bytes.Equal(served(t, cfg), second) {
		t.Error("a failed reload changed the certificate served")
	}
}

func TestLoadNamesTheFiles(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.pem")
	_, err := Load(missing, missing)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("error %v does not name %s", err, missing)
	}
}
