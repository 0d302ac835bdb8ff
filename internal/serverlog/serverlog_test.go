package serverlog

import (
	"bytes"
	"log"
	"log/slog"
	"strings"
	"testing"
)

func TestClientsDoingsAreDebug(t *testing.T) {
	for _, tc := range []struct {
		name         string
		log          func(*slog.Logger) *log.Logger
		debug, other string
	}{
		{"http", HTTP, "http: TLS handshake error from 192.0.2.1:4711: EOF", "http: panic serving 192.0.2.1:4711: boom"},
		{"smtp", SMTP, "error handling 192.0.2.1:4711: read tcp 127.0.0.1:25->192.0.2.1:4711: read: connection reset by peer", "panic serving 192.0.2.1:4711: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			l := tc.log(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
			l.Printf("%s", tc.debug)
			l.Printf("%s", tc.other)
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 2 || !strings.Contains(lines[0], "level=DEBUG") || !strings.Contains(lines[0], `msg="`+tc.debug+`"`) ||
				!strings.Contains(lines[1], "level=WARN") || !strings.Contains(lines[1], tc.other) {
				t.Errorf("logged:\n%s", out.String())
			}
		})
	}
}
