package serverlog

import (
	"bufio"
	"bytes"
	"dirigent/internal/testrun"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
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

// The libraries' own words, from their servers: go-smtp's for a client
// that resets its connection, net/http's for plain HTTP sent to its HTTPS
// port.
func TestClientsDoingsOnRealServersAreDebug(t *testing.T) {
	t.Run("smtp", func(t *testing.T) {
		out := &syncBuffer{}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return nil, errors.New("no sessions here") }))
		srv.ErrorLog = SMTP(debugLogger(out))
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil { // the greeting
			t.Fatal(err)
		}
		c.(*net.TCPConn).SetLinger(0) // closing resets the connection
		c.Close()
		testrun.Eventually(t, 10*time.Second, "the reset logged", func() bool { return strings.Contains(out.String(), "connection reset by peer") })
		if !strings.Contains(out.String(), `level=DEBUG msg="error handling `) {
			t.Errorf("logged:\n%s", out)
		}
	})
	t.Run("http", func(t *testing.T) {
		out := &syncBuffer{}
		srv := httptest.NewUnstartedServer(http.NotFoundHandler())
		srv.Config.ErrorLog = HTTP(debugLogger(out))
		srv.StartTLS()
		t.Cleanup(srv.Close)
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, "GET / HTTP/1.0\r\n\r\n")
		io.ReadAll(c)
		c.Close()
		testrun.Eventually(t, 10*time.Second, "the handshake logged", func() bool { return strings.Contains(out.String(), "TLS handshake error") })
		if !strings.Contains(out.String(), `level=DEBUG msg="http: TLS handshake error`) {
			t.Errorf("logged:\n%s", out)
		}
	})
}

func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// syncBuffer is written by a server's goroutines and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
