package testpeer

import (
	"net"
	"testing"
	"time"
)

// Postfix stops with its test: nothing listens on its port afterwards.
// (Other packages' tests may run a Postfix of their own meanwhile: its
// processes are not counted.)
func TestPostfixStopsWithItsTest(t *testing.T) {
	var addr string
	t.Run("postfix", func(t *testing.T) {
		addr = Postfix(t, "", "example.com", "127.0.0.1:25")
	})
	if addr == "" {
		t.Skip("no Postfix to stop")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("something still listens on %s", addr)
	}
}
