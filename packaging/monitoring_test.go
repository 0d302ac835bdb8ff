package packaging

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"dirigent/internal/testpeer"
)

var (
	alertRules   = filepath.Join(repoRoot, "packaging", "monitoring", "dirigent-alerts.yml")
	alertTests   = filepath.Join(repoRoot, "packaging", "monitoring", "dirigent-alerts_test.yml")
	dashboard    = filepath.Join(repoRoot, "packaging", "monitoring", "dirigent-dashboard.json")
	metricName   = regexp.MustCompile(`\bdirigent_[a-z0-9_]+`)
	readyLine    = regexp.MustCompile(`msg="dirigent ready".* desk=(\S+) smtp=(\S+)`)
	listenLine   = regexp.MustCompile(`(?m)^((?:smtp_)?listen) = "127\.0\.0\.1:[0-9]+"`)
	storageDir   = regexp.MustCompile(`(?m)^dir = ""`)
	controlSock  = regexp.MustCompile(`(?m)^socket = ""`)
	chatSection  = regexp.MustCompile(`(?m)^\[chat\]`)
	daemonBinary struct {
		once sync.Once
		path string
		err  error
		out  []byte
	}
)

func TestAlertRulesPassPromtool(t *testing.T) {
	promtool := testpeer.Require(t, "promtool", "prometheus")
	if out, err := exec.Command(promtool, "check", "rules", alertRules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	// The unit tests of the alerts: each fires on its series and stays
	// quiet on healthy ones.
	cmd := exec.Command(promtool, "test", "rules", filepath.Base(alertTests))
	cmd.Dir = filepath.Dir(alertTests)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// grafanaDashboard is the part of Grafana's dashboard model the test reads.
type grafanaDashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Panels        []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	var d grafanaDashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboard, err)
	}
	if !json.Valid(raw) {
		t.Fatalf("%s is not valid JSON", dashboard)
	}
	return d
}

func TestDashboardIsGrafanaJSON(t *testing.T) {
	d := readDashboard(t)
	if d.Title == "" || d.UID == "" || d.SchemaVersion == 0 {
		t.Errorf("dashboard lacks title, uid or schemaVersion: %+v", d)
	}
	graphs := 0
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		graphs++
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if strings.TrimSpace(q.Expr) == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
		}
	}
	if graphs < 10 {
		t.Errorf("%d panels, want the queues, agents, mail and daemon health (10 or more)", graphs)
	}
}

// buildDaemon builds cmd/dirigent once for the tests that run it.
func buildDaemon(t *testing.T) string {
	t.Helper()
	b := &daemonBinary
	b.once.Do(func() {
		b.path = filepath.Join(workDir, "dirigent")
		cmd := exec.Command(goCommand(), "build", "-o", b.path, "./cmd/dirigent")
		cmd.Dir = repoRoot
		b.out, b.err = cmd.CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("go build ./cmd/dirigent: %v\n%s", b.err, b.out)
	}
	return b.path
}

// runningDaemon is a daemon started on the shipped configuration with
// every listener on a free loopback port and its store in a temporary
// directory.
type runningDaemon struct {
	cmd        *exec.Cmd
	desk, smtp string
	socket     string
	config     string
	done       chan error
}

// siteConfig is packaging/dirigent.toml (what the package installs) with
// test ports and paths.
func siteConfig(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "packaging", "dirigent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s := listenLine.ReplaceAllString(string(raw), `$1 = "127.0.0.1:0"`)
	s = storageDir.ReplaceAllString(s, `dir = "`+filepath.Join(dir, "data")+`"`)
	s = controlSock.ReplaceAllString(s, `socket = "`+filepath.Join(dir, "control.sock")+`"`)
	if !chatSection.MatchString(s) {
		// The chat listener's default port would collide with other tests.
		s += "\n[chat]\nlisten = \"127.0.0.1:0\"\n"
	}
	path := filepath.Join(dir, "dirigent.toml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startDaemon runs `dirigent serve` on siteConfig, wrapped in the
// command prefix (e.g. strace), and waits until it says it is ready.
func startDaemon(t *testing.T, prefix ...string) *runningDaemon {
	t.Helper()
	bin := buildDaemon(t)
	dir := t.TempDir()
	d := &runningDaemon{config: siteConfig(t, dir), socket: filepath.Join(dir, "control.sock"), done: make(chan error, 1)}
	args := append(append([]string{}, prefix...), bin, "serve", "--config", d.config)
	d.cmd = exec.Command(args[0], args[1:]...)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan []string, 1)
	var logMu sync.Mutex
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m
			}
		}
		io.Copy(io.Discard, stderr)
		d.done <- d.cmd.Wait()
	}()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			logMu.Lock()
			t.Logf("daemon log:\n%s", log.String())
			logMu.Unlock()
		}
	})
	select {
	case m := <-ready:
		d.desk, d.smtp = m[1], m[2]
	case err := <-d.done:
		d.done <- err
		t.Fatalf("the daemon exited before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon was not ready within 60 s")
	}
	return d
}

// stop sends SIGTERM and waits for a clean exit.
func (d *runningDaemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		if err != nil {
			t.Errorf("the daemon exited with %v after SIGTERM", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon did not stop within 60 s of SIGTERM")
	}
}

func (d *runningDaemon) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + d.desk + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %v %s", err, resp.Status)
	}
	return string(b)
}

// TestMonitoringKitMatchesTheDaemon checks that a daemon running the
// shipped configuration passes promtool check metrics and exports every
// metric the alert rules and the dashboard use, so a renamed metric
// cannot silently blind them.
func TestMonitoringKitMatchesTheDaemon(t *testing.T) {
	promtool := testpeer.Require(t, "promtool", "prometheus")
	d := startDaemon(t)
	// The second scrape has the HTTP counters the first one created.
	d.metrics(t)
	exposition := d.metrics(t)

	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(exposition)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	exported := map[string]bool{}
	for _, l := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(l, "# HELP ") || strings.HasPrefix(l, "# TYPE ") {
			continue
		}
		if name := metricName.FindString(l); name != "" && strings.HasPrefix(l, name) {
			exported[name] = true
		}
	}
	// Series that exist only once something happened; the name must still
	// be one the daemon's source defines.
	onlyWhenAnswered := map[string]string{
		"dirigent_router_service_level_ratio": filepath.Join(repoRoot, "router", "metrics.go"),
	}
	rules, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	dash, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"alert rules": string(rules), "dashboard": string(dash)} {
		for _, name := range metricName.FindAllString(text, -1) {
			if exported[name] {
				continue
			}
			if src, ok := onlyWhenAnswered[name]; ok {
				code, err := os.ReadFile(src)
				if err == nil && strings.Contains(string(code), `"`+name+`"`) {
					continue
				}
			}
			t.Errorf("the %s use %s, which the daemon does not export", what, name)
		}
	}
	d.stop(t)
}

func TestManPageRenders(t *testing.T) {
	groff := testpeer.Require(t, "groff", "groff-base")
	page := filepath.Join(repoRoot, "packaging", "dirigent.8")
	out, err := exec.Command(groff, "-man", "-ww", "-z", page).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("groff warns about %s: %v\n%s", page, err, out)
	}
	text, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	// Every subcommand of the binary has its entry.
	for _, cmd := range []string{"serve", "check\\-config", "backup", "import customers", "customer export", "token new", "version"} {
		if !strings.Contains(string(text), cmd) {
			t.Errorf("the man page does not mention %s", cmd)
		}
	}
}
