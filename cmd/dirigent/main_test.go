package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"dirigent/internal/testpeer"
	"dirigent/store"
)

// The tests run the daemon as a real process: this test binary re-executes
// itself with DIRIGENT_TEST_MAIN=1 and becomes dirigent, so signals, exit
// codes and sd_notify are exercised exactly as systemd would see them.
func TestMain(m *testing.M) {
	if os.Getenv("DIRIGENT_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// dirigentCmd returns a command running dirigent with args.
func dirigentCmd(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DIRIGENT_TEST_MAIN=1", "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "STATE_DIRECTORY=", "RUNTIME_DIRECTORY=")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// setInConfig adds TOML lines to a section that writeConfig wrote.
func setInConfig(t *testing.T, path, section, lines string) {
	t.Helper()
	header := "[" + section + "]\n"
	text := mustRead(t, path)
	if !strings.Contains(text, header) {
		t.Fatalf("%s has no %s", path, header)
	}
	writeFile(t, path, strings.Replace(text, header, header+lines, 1))
}

// writeConfig writes a config for a test daemon: loopback, port 0, json
// logs, the store and socket in dir.
func writeConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "dirigent.toml")
	text := fmt.Sprintf(`skills = ["support"]
[log]
format = "json"
[storage]
dir = %q
lock_timeout = "300ms"
[control]
socket = %q
[desk]
listen = "127.0.0.1:0"
[sip]
listen = "127.0.0.1:0"
[mail]
smtp_listen = "127.0.0.1:0"
addresses = ["support@example.com"]
[chat]
listen = "127.0.0.1:0"
[[queues]]
name = "support"
skills = { support = 1 }
%s`, filepath.Join(dir, "data"), filepath.Join(dir, "control.sock"), extra)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runningDaemon is a started dirigent serve process.
type runningDaemon struct {
	cmd    *exec.Cmd
	logs   chan map[string]any // every JSON log line
	desk   string              // http://host:port
	smtp   string              // host:port
	chat   string              // host:port of the chat widget, "off" when none
	sip    string              // host:port of SIP (UDP and TCP)
	exited chan error
	// errorLines are the ERROR lines stop read while the daemon shut down.
	errorLines []map[string]any
}

func startDaemon(t *testing.T, cfgPath string, env ...string) *runningDaemon {
	t.Helper()
	cmd := dirigentCmd(t, env, "serve", "--config", cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &runningDaemon{cmd: cmd, logs: make(chan map[string]any, 100000), exited: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				line = map[string]any{"msg": sc.Text()}
			}
			t.Logf("dirigent: %s", sc.Text())
			d.logs <- line
		}
		close(d.logs)
		d.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-d.exited
	})
	line := d.waitLog(t, "dirigent ready")
	d.desk = "http://" + line["desk"].(string)
	d.smtp = line["smtp"].(string)
	d.chat, _ = line["chat"].(string)
	d.sip, _ = line["sip"].(string)
	return d
}

// reload has the daemon reload its file and returns what it warned of or
// logged as errors meanwhile, failing when it refuses the file.
func (d *runningDaemon) reload(t *testing.T) []map[string]any {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGHUP)
	var warned []map[string]any
	d.readLog(t, "the reload", func(line map[string]any) bool {
		switch {
		case line["msg"] == "reload refused, the running configuration stays":
			t.Fatalf("reload refused: %v", line["err"])
		case line["msg"] == "configuration reloaded":
			return true
		case line["level"] == "WARN" || line["level"] == "ERROR":
			warned = append(warned, line)
		}
		return false
	})
	return warned
}

// waitLog returns the first log line with msg, failing after 20 s.
func (d *runningDaemon) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	var found map[string]any
	d.readLog(t, fmt.Sprintf("log line %q", msg), func(line map[string]any) bool {
		found = line
		return line["msg"] == msg
	})
	return found
}

// readLog hands the daemon's log lines to done until it says so, failing
// when dirigent exits first or after 20 s.
func (d *runningDaemon) readLog(t *testing.T, what string, done func(line map[string]any) bool) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-d.logs:
			if !ok {
				t.Fatalf("dirigent exited before %s", what)
			}
			if done(line) {
				return
			}
		case <-timeout:
			t.Fatalf("no %s within 20 s", what)
		}
	}
}

// stop signals the daemon and waits for it to exit, reading the rest of
// its log (its ERROR lines into d.errorLines).
func (d *runningDaemon) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	for line := range d.logs {
		if line["level"] == "ERROR" {
			d.errorLines = append(d.errorLines, line)
		}
	}
	select {
	case err := <-d.exited:
		d.exited <- err // for the cleanup
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("dirigent did not exit within 20 s")
		return nil
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func exitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("skills = [\"a\"]\n[desk]\nlisten = \"nowhere\"\nport = 80\n[[queues]]\nname = \"q\"\nskills = { b = 1 }\n"), 0o644)
	tests := []struct {
		name   string
		args   []string
		status int
		out    string
	}{
		{"the packaged example", []string{"check-config", "../../packaging/dirigent.toml"}, 0, ""},
		{"every problem with its line", []string{"check-config", bad}, 2, bad + `:3: desk.listen: listen address "nowhere": want host:port, e.g. 127.0.0.1:8080 or [::]:5060
` + bad + `:4: desk.port: unknown key (known here: admins, api_tokens, away_reasons, listen, session_timeout, supervisors, tls_cert, tls_key, trusted_proxies, wrap_codes)
` + bad + `:7: queues[0].skills.b: undefined skill "b" (define it in skills)
`},
		{"missing file", []string{"check-config", filepath.Join(dir, "none.toml")}, 2, filepath.Join(dir, "none.toml") + ": open " + filepath.Join(dir, "none.toml") + ": no such file or directory\n"},
		{"no argument", []string{"check-config"}, 2, "usage: dirigent check-config FILE\n"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command \"frobnicate\"\n" + usage + "\n"},
		{"bad config for serve", []string{"serve", "--config", bad}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := dirigentCmd(t, nil, tt.args...)
			out, err := cmd.CombinedOutput()
			if got := exitStatus(err); got != tt.status {
				t.Errorf("exit status %d, want %d; output:\n%s", got, tt.status, out)
			}
			if tt.out != "" && string(out) != tt.out {
				t.Errorf("output:\n%s\nwant:\n%s", out, tt.out)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := dirigentCmd(t, nil, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "dirigent ") {
		t.Fatalf("version: %q, %v", out, err)
	}
}

// notifyListener is the systemd side of sd_notify: a unixgram socket.
func notifyListener(t *testing.T) (string, chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msgs := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			for _, m := range strings.Split(string(buf[:n]), "\n") {
				msgs <- m
			}
		}
	}()
	return path, msgs
}

// waitNotify waits for the state and returns every message before it.
func waitNotify(t *testing.T, msgs chan string, state string) []string {
	t.Helper()
	var seen []string
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-msgs:
			if m == state {
				return seen
			}
			seen = append(seen, m)
		case <-timeout:
			t.Fatalf("no %s within 20 s; saw %q", state, seen)
		}
	}
}

func TestLifecycleWithSystemd(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "")
	sock, msgs := notifyListener(t)
	d := startDaemon(t, cfgPath, "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=300000")

	before := waitNotify(t, msgs, "READY=1")
	if len(before) == 0 || !strings.HasPrefix(before[0], "STATUS=opening store") {
		t.Errorf("before READY=1: %q, want a STATUS line first", before)
	}
	// READY=1 is sent only once everything is bound, so the desk answers.
	if code, body := get(t, d.desk+"/readyz"); code != 200 {
		t.Errorf("/readyz after READY=1: %d %s", code, body)
	}
	if code, _ := get(t, d.desk+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	waitNotify(t, msgs, "WATCHDOG=1")

	// A good reload: RELOADING=1, then READY=1, and the new level applies.
	setInConfig(t, cfgPath, "log", "level = \"debug\"\n")
	writeFile(t, cfgPath, mustRead(t, cfgPath)+"[[agents]]\nid = \"newbie\"\nskills = { support = 1 }\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitNotify(t, msgs, "RELOADING=1")
	waitNotify(t, msgs, "READY=1")
	d.waitLog(t, "configuration reloaded")

	// A broken file is refused and the daemon keeps serving.
	os.WriteFile(cfgPath, []byte("[desk]\nlisten = 1\n"), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitNotify(t, msgs, "RELOADING=1")
	waitNotify(t, msgs, "READY=1")
	line := d.waitLog(t, "reload refused, the running configuration stays")
	if !strings.Contains(fmt.Sprint(line["err"]), "desk.listen: want a string, got integer 1") {
		t.Errorf("refusal does not name the problem: %v", line["err"])
	}
	_, metrics := get(t, d.desk+"/metrics")
	for _, want := range []string{
		`dirigent_config_reloads_total{result="applied"} 1`,
		`dirigent_config_reloads_total{result="refused"} 1`,
		"dirigent_config_last_reload_successful 0",
		"dirigent_build_info{",
		"dirigent_store_",
		`dirigent_router_tasks_waiting{queue="support"} 0`,
		`dirigent_router_agents{presence="offline"} 1`, // the agent added by the reload
		"dirigent_process_resident_memory_bytes",
		"go_goroutines",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	waitNotify(t, msgs, "STOPPING=1")
	if _, err := os.Stat(filepath.Join(dir, "control.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left behind: %v", err)
	}
}

// promtool, Prometheus' own checker, must accept everything on /metrics.
func TestMetricsPassPromtool(t *testing.T) {
	promtool := testpeer.Require(t, "promtool", "prometheus")
	d := startDaemon(t, writeConfig(t, t.TempDir(), ""))
	_, metrics := get(t, d.desk+"/metrics")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(metrics)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// What `make run` does: serve on the embedded default, in a fresh
// directory, on 127.0.0.1:8080.
func TestServeEmbeddedDefault(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:2525", "127.0.0.1:8081"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("%s is taken, the embedded default cannot start here: %v", addr, err)
		}
		ln.Close()
	}
	dir := t.TempDir()
	cmd := dirigentCmd(t, nil, "serve")
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Signal(syscall.SIGTERM)
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "dirigent ready") {
	}
	go io.Copy(io.Discard, stderr)
	code, metrics := get(t, "http://127.0.0.1:8080/metrics")
	if code != 200 || !strings.Contains(metrics, "dirigent_build_info{") {
		t.Errorf("/metrics: %d, build info missing", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "dirigent-data", "dirigent.db")); err != nil {
		t.Errorf("store not under ./dirigent-data: %v", err)
	}
}

// A stop drains open sessions; a second signal does not wait for them.
func TestSecondSignalForcesExit(t *testing.T) {
	d := startDaemon(t, writeConfig(t, t.TempDir(), "[daemon]\ndrain_timeout = \"60s\"\n"))
	// An SMTP session that has begun but never ends keeps the drain
	// waiting; its greeting and EHLO answer prove the server tracks it.
	conn, err := net.Dial("tcp", d.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "EHLO client.test\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "250 ") {
			break
		}
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.waitLog(t, "stopping")
	err = d.stop(t, syscall.SIGTERM)
	if exitStatus(err) != 1 {
		t.Errorf("exit after the second signal: %v, want status 1", err)
	}
}

func TestSecondDaemonFailsFast(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "")
	startDaemon(t, cfgPath)
	cmd := dirigentCmd(t, nil, "serve", "--config", cfgPath)
	out, err := cmd.CombinedOutput()
	if exitStatus(err) != 1 || !strings.Contains(string(out), "in use by another process") {
		t.Fatalf("second daemon: status %d, output:\n%s", exitStatus(err), out)
	}
}

func TestBackupWhileServing(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "")
	d := startDaemon(t, cfgPath)
	out := filepath.Join(dir, "backup.db")
	res, err := dirigentCmd(t, nil, "backup", "--config", cfgPath, "--out", out).CombinedOutput()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, res)
	}
	if !strings.Contains(string(res), "written to "+out) {
		t.Errorf("backup output: %s", res)
	}
	if err := store.Verify(out); err != nil {
		t.Errorf("backup does not verify: %v", err)
	}
	if code, _ := get(t, d.desk+"/readyz"); code != 200 {
		t.Error("daemon not serving after backup")
	}
	// Without a daemon the command fails clearly and writes nothing.
	d.stop(t, syscall.SIGINT)
	out2 := filepath.Join(dir, "backup2.db")
	res, err = dirigentCmd(t, nil, "backup", "--socket", filepath.Join(dir, "control.sock"), "--out", out2).CombinedOutput()
	if exitStatus(err) != 1 || !strings.Contains(string(res), "is dirigent running?") {
		t.Errorf("backup without daemon: status %d, %s", exitStatus(err), res)
	}
	if _, err := os.Stat(out2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed backup left %s", out2)
	}
}

func TestImportCustomers(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "")
	startDaemon(t, cfgPath)
	csv := filepath.Join("..", "..", "journey", "testdata", "excel-utf8-bom.csv")
	out, err := dirigentCmd(t, nil, "import", "customers", "--config", cfgPath, csv).CombinedOutput()
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "import: 4 rows, 3 customers created, 0 updated, 4 problems\n  line 4: ") {
		t.Errorf("output:\n%s", out)
	}
	// Again: updates only.
	out, _ = dirigentCmd(t, nil, "import", "customers", "--config", cfgPath, csv).CombinedOutput()
	if !strings.HasPrefix(string(out), "import: 4 rows, 0 customers created, 3 updated") {
		t.Errorf("re-import output:\n%s", out)
	}
	headless := filepath.Join(dir, "headless.csv")
	os.WriteFile(headless, []byte("K-1;Joe;030 123456\n"), 0o644)
	out, err = dirigentCmd(t, nil, "import", "customers", "--config", cfgPath, headless).CombinedOutput()
	if exitStatus(err) != 1 || !strings.Contains(string(out), "400 Bad Request: import: the first line must name the columns") {
		t.Errorf("file without header: status %d\n%s", exitStatus(err), out)
	}
	out, err = dirigentCmd(t, nil, "import", "customers", "--config", cfgPath, filepath.Join(dir, "missing.csv")).CombinedOutput()
	if exitStatus(err) != 2 {
		t.Errorf("missing file: status %d\n%s", exitStatus(err), out)
	}

	// GDPR: export a customer, erase them, and they are gone.
	exp, err := dirigentCmd(t, nil, "customer", "export", "--config", cfgPath, "1").Output()
	var doc struct {
		Customer struct {
			CRMID string `json:"crm_id"`
		}
		Identities []string
	}
	if err != nil || json.Unmarshal(exp, &doc) != nil || doc.Customer.CRMID != "K-100" || len(doc.Identities) != 3 {
		t.Fatalf("export: %v\n%s", err, exp)
	}
	if out, err := dirigentCmd(t, nil, "customer", "erase", "--config", cfgPath, "1").CombinedOutput(); err != nil {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	out, err = dirigentCmd(t, nil, "customer", "export", "--config", cfgPath, "1").CombinedOutput()
	if exitStatus(err) != 1 || !strings.Contains(string(out), "404 Not Found: customer 1: not found") {
		t.Errorf("export after erase: status %d\n%s", exitStatus(err), out)
	}
	if out, err := dirigentCmd(t, nil, "customer", "erase", "--config", cfgPath, "joe").CombinedOutput(); exitStatus(err) != 2 {
		t.Errorf("erase joe: status %d\n%s", exitStatus(err), out)
	}

	// Merge K-101 (2) into K-102 (3)? Two CRM ids: refused with 409.
	out, err = dirigentCmd(t, nil, "customer", "merge", "--config", cfgPath, "2", "3").CombinedOutput()
	if exitStatus(err) != 1 || !strings.Contains(string(out), "409 Conflict: customers 2 and 3 have different CRM ids (K-101, K-102)") {
		t.Errorf("merge of two CRM customers: status %d\n%s", exitStatus(err), out)
	}
	// A caller without CRM id joins K-101, and the merge is undone.
	noCRM := filepath.Join(dir, "no-crm.csv")
	os.WriteFile(noCRM, []byte("email\nnew@example.org\n"), 0o644)
	if out, err := dirigentCmd(t, nil, "import", "customers", "--config", cfgPath, noCRM).CombinedOutput(); err != nil || !strings.Contains(string(out), "1 customers created") {
		t.Fatalf("import: %v %s", err, out)
	}
	merged, err := dirigentCmd(t, nil, "customer", "merge", "--config", cfgPath, "2", "4").Output()
	var rec struct{ ID uint64 }
	if err != nil || json.Unmarshal(merged, &rec) != nil || rec.ID == 0 {
		t.Fatalf("merge: %v\n%s", err, merged)
	}
	if out, err := dirigentCmd(t, nil, "customer", "unmerge", "--config", cfgPath, fmt.Sprint(rec.ID)).CombinedOutput(); err != nil {
		t.Errorf("unmerge: %v\n%s", err, out)
	}
	if out, err := dirigentCmd(t, nil, "customer", "suggest", "--config", cfgPath, "2").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), `{"suggestions":`) {
		t.Errorf("suggest: %v\n%s", err, out)
	}

	// Customer 4 gets a CRM id. An address taken from them (given as
	// written, normalised) is no longer theirs; only theirs can be taken
	// from them.
	crm4 := filepath.Join(dir, "crm-4.csv")
	os.WriteFile(crm4, []byte("crm_id,email\nK-104,new@example.org\n"), 0o644)
	if out, err := dirigentCmd(t, nil, "import", "customers", "--config", cfgPath, crm4).CombinedOutput(); err != nil || !strings.Contains(string(out), "1 updated, 0 problems") {
		t.Fatalf("import of K-104: %v %s", err, out)
	}
	identities := func(what string, want int) {
		t.Helper()
		exp, err := dirigentCmd(t, nil, "customer", "export", "--config", cfgPath, "4").Output()
		doc.Identities = nil
		if err != nil || json.Unmarshal(exp, &doc) != nil || len(doc.Identities) != want {
			t.Errorf("customer 4 %s: %v\n%s", what, err, exp)
		}
	}
	for _, tc := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"unlink", "3", "email:new@example.org"}, 1, "404 Not Found: identity email:new@example.org of customer 3: not found"},
		{[]string{"unlink", "4", "email:New@Example.org"}, 0, `{"customer":4,"identity":"email:new@example.org"}`},
		{[]string{"unlink", "4", "email:new@example.org"}, 1, "404 Not Found"},
		{[]string{"unlink", "4", "kein"}, 1, "400 Bad Request"},
		{[]string{"unlink", "4"}, 2, "usage: dirigent customer"},
	} {
		out, err := dirigentCmd(t, nil, append([]string{"customer", tc.args[0], "--config", cfgPath}, tc.args[1:]...)...).CombinedOutput()
		if exitStatus(err) != tc.status || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: status %d, want %d %q\n%s", tc.args, exitStatus(err), tc.status, tc.want, out)
		}
	}
	identities("after the unlink", 0)
	// The CRM's import does not give it back; the admin does.
	out, err = dirigentCmd(t, nil, "import", "customers", "--config", cfgPath, crm4).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "line 2: identity email:new@example.org was taken from this customer; not given back (dirigent customer link gives it back)") {
		t.Errorf("import after the unlink: %v\n%s", err, out)
	}
	identities("after the import", 0)
	for _, tc := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"link", "4", "email:New@Example.org"}, 0, `{"customer":4,"identity":"email:new@example.org"}`},
		{[]string{"link", "4", "email:new@example.org"}, 0, `{"customer":4,"identity":"email:new@example.org"}`},
		{[]string{"link", "3", "email:new@example.org"}, 1, "409 Conflict: conflict: email:new@example.org belongs to customer 4; merge the two first"},
		{[]string{"link", "99", "email:x@example.org"}, 1, "404 Not Found: customer 99: not found"},
	} {
		out, err := dirigentCmd(t, nil, append([]string{"customer", tc.args[0], "--config", cfgPath}, tc.args[1:]...)...).CombinedOutput()
		if exitStatus(err) != tc.status || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: status %d, want %d %q\n%s", tc.args, exitStatus(err), tc.status, tc.want, out)
		}
	}
	identities("after the link", 1)
}

func TestWatchdogFedOnlyWhileChecksPass(t *testing.T) {
	var pings int
	w := &watchdog{
		interval: 200 * time.Millisecond,
		notify:   func(...string) { pings++ },
		logger:   slog.New(slog.DiscardHandler),
	}
	stuck := false
	w.checks = []progressCheck{{"store", func(ctx context.Context) error {
		if stuck {
			<-ctx.Done() // a read that never returns
			return ctx.Err()
		}
		return nil
	}}}
	if !w.beat(context.Background()) || pings != 1 {
		t.Fatalf("healthy: pinged %d times", pings)
	}
	stuck = true
	if w.beat(context.Background()) || pings != 1 {
		t.Fatalf("stuck store read still fed the watchdog (%d pings)", pings)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
