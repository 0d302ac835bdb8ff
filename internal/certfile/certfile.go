// Package certfile serves a TLS certificate from the PEM files an admin
// configured, and reads them again on a reload: a renewed certificate
// takes effect without a restart, which would drop calls. It imports
// nothing of dirigent.
package certfile

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// Pair is a certificate and its key, as last read from their files.
type Pair struct {
	cert, key string
	current   atomic.Pointer[tls.Certificate]
}

// Load reads the certificate (with its chain) and the key.
func Load(certFile, keyFile string) (*Pair, error) {
	p := &Pair{cert: certFile, key: keyFile}
	if err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload reads the files again. On an error the certificate served so
// far stays.
func (p *Pair) Reload() error {
	c, err := tls.LoadX509KeyPair(p.cert, p.key)
	if err != nil {
		return fmt.Errorf("certificate %s with key %s: %w", p.cert, p.key, err)
	}
	p.current.Store(&c)
	return nil
}

// ServerConfig is a TLS server configuration that always presents the
// certificate last read, TLS 1.2 at least.
func (p *Pair) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return p.current.Load(), nil
		},
	}
}
