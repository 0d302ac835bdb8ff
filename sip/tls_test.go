package sip

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"dirigent/router"
)

// selfSigned writes a certificate for 127.0.0.1, its own CA, and its key
// into dir, and returns their paths.
func selfSigned(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// TestCallToBaresipOverTLS: anna's baresip registers over TLS, checking
// dirigent's certificate; a caller's call rings it over that connection,
// baresip answers, audio flows both ways, and the contact is complete.
func TestCallToBaresipOverTLS(t *testing.T) {
	cfg := testConfig()
	cfg.TLSListen = "127.0.0.1:0"
	cfg.TLSCert, cfg.TLSKey = selfSigned(t, t.TempDir())
	s := startSite(t, cfg, "")
	s.startBaresip(t, cfg.TLSCert)
	if g := s.ch.registrar.contacts("anna"); len(g) != 1 || g[0].Transport != "TLS" && g[0].Transport != "tls" {
		t.Fatalf("anna's registration %+v, want one over TLS", g)
	}
	// anna becomes available a second into the call, so the caller's
	// first audio is the hold audio and baresip's is told apart from it.
	go func() {
		time.Sleep(time.Second)
		s.router.SetPresence("anna", router.Available, "")
	}()
	media := s.call(t, "caller-hangup.xml", "03055510006", "-d", "4000")
	if _, _, other := media.counts(); other == 0 {
		t.Errorf("the caller heard nothing from baresip")
	}
	eventually(t, 5*time.Second, "the contact completed", func() bool {
		ct := s.callerContact(t, "03055510006")
		return ct != nil && ct.Outcome == outcomeAnswered && ct.Agent == "anna"
	})
}
