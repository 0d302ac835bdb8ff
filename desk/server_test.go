package desk

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"dirigent/internal/testrun"
	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

// testToken is the API token the test server accepts.
const testToken = "s3cret-token"

func startServer(t *testing.T) (*Server, string) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "d.db"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	j, err := journey.New(journey.Config{Region: "DE"}, journey.Deps{Store: st, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(router.Config{}, router.Deps{Logger: logger, Journal: discardJournal{}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(testToken))
	s, err := New("127.0.0.1:0", Deps{
		Logger: logger, Registry: prometheus.NewRegistry(), DrainTimeout: time.Second,
		Store: st, Journey: j, APITokens: []APIToken{{Name: "shop", SHA256: hex.EncodeToString(sum[:])}},
		Router: r,
	})
	if err != nil {
		t.Fatal(err)
	}
	testrun.Start(t, s.Run)
	return s, "http://" + s.Addr().String()
}

// discardJournal keeps no router journal: these tests look at the live
// router, not at what a restart would recover.
type discardJournal struct{}

func (discardJournal) Record(router.Event) {}

func getJSON(t *testing.T, url string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q", url, ct)
	}
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode, body
}

func TestHealthAndReadiness(t *testing.T) {
	s, base := startServer(t)
	tests := []struct {
		name   string
		change func()
		path   string
		code   int
		body   map[string]string
	}{
		{"alive while starting", nil, "/healthz", 200, map[string]string{"status": "ok"}},
		{"not ready while starting", nil, "/readyz", 503, map[string]string{"status": "not ready", "reason": "starting"}},
		{"ready", s.SetReady, "/readyz", 200, map[string]string{"status": "ready"}},
		{"draining", func() { s.SetNotReady("draining") }, "/readyz", 503, map[string]string{"status": "not ready", "reason": "draining"}},
		{"unknown path", nil, "/nope", 404, map[string]string{"error": "no such endpoint: GET /nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.change != nil {
				tt.change()
			}
			code, body := getJSON(t, base+tt.path)
			if code != tt.code || len(body) != len(tt.body) {
				t.Fatalf("%d %v, want %d %v", code, body, tt.code, tt.body)
			}
			for k, v := range tt.body {
				if body[k] != v {
					t.Errorf("%s = %q, want %q", k, body[k], v)
				}
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	_, base := startServer(t)
	resp, err := http.Post(base+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" {
		t.Errorf("POST /healthz: %d", resp.StatusCode)
	}
}

func TestMetricsCountRequests(t *testing.T) {
	_, base := startServer(t)
	getJSON(t, base+"/healthz")
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `dirigent_desk_http_requests_total{code="200",method="get"} 1`) {
		t.Errorf("/metrics does not count the /healthz request:\n%s", body)
	}
}
