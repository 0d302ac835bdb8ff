package httplog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestHandshakeErrorsAreDebug(t *testing.T) {
	var out bytes.Buffer
	l := ErrorLog(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Printf("http: TLS handshake error from 192.0.2.1:4711: EOF")
	l.Printf("http: panic serving 192.0.2.1:4711: boom")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=DEBUG") || !strings.Contains(lines[0], `msg="http: TLS handshake error from 192.0.2.1:4711: EOF"`) ||
		!strings.Contains(lines[1], "level=WARN") || !strings.Contains(lines[1], "http: panic serving") {
		t.Errorf("logged:\n%s", out.String())
	}
}
