package packaging

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"dirigent/internal/testpeer"
)

var (
	filterLine  = regexp.MustCompile(`(?m)^SystemCallFilter=(.*)$`)
	straceCall  = regexp.MustCompile(`^\d+\s+([a-z0-9_]+)\(`)
	straceAfter = regexp.MustCompile(`^\d+\s+<\.\.\. ([a-z0-9_]+) resumed>`)
)

// syscallSet expands systemd's syscall groups (@system-service, …) into
// the names of the calls, as `systemd-analyze syscall-filter` lists them.
func syscallSet(t *testing.T, analyze string, items []string) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	var expand func(item string)
	seen := map[string]bool{}
	expand = func(item string) {
		if !strings.HasPrefix(item, "@") {
			set[item] = true
			return
		}
		if seen[item] {
			return
		}
		seen[item] = true
		out, err := exec.Command(analyze, "syscall-filter", "--no-pager", item).Output()
		if err != nil {
			t.Fatalf("systemd-analyze syscall-filter %s: %v", item, err)
		}
		lines := strings.Split(string(out), "\n")
		for _, l := range lines[1:] { // the first line names the group
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			expand(l)
		}
	}
	for _, i := range items {
		expand(i)
	}
	return set
}

// unitSyscallFilter is what the unit allows: the union of its allow
// lines minus the union of its deny (~) lines.
func unitSyscallFilter(t *testing.T, analyze string) map[string]bool {
	t.Helper()
	unit, err := os.ReadFile(filepath.Join(repoRoot, "systemd", "dirigent.service"))
	if err != nil {
		t.Fatal(err)
	}
	var allow, deny []string
	for _, m := range filterLine.FindAllStringSubmatch(string(unit), -1) {
		v := strings.TrimSpace(m[1])
		if strings.HasPrefix(v, "~") {
			deny = append(deny, strings.Fields(v[1:])...)
		} else {
			allow = append(allow, strings.Fields(v)...)
		}
	}
	if len(allow) == 0 {
		t.Fatal("the unit has no SystemCallFilter allow list")
	}
	allowed := syscallSet(t, analyze, allow)
	for call := range syscallSet(t, analyze, deny) {
		delete(allowed, call)
	}
	return allowed
}

// TestSystemCallFilterAllowsTheDaemon runs the daemon under strace through
// start, /metrics, /readyz, a mail over SMTP (the store's fdatasync), a
// backup over the control socket, a reload (SIGHUP) and a stop (SIGTERM),
// and checks that every system call it made passes the unit's
// SystemCallFilter. PID 1 here is not systemd, so the filter cannot be
// applied for real; this is the next best proof that it will not make
// the daemon fail with EPERM.
func TestSystemCallFilterAllowsTheDaemon(t *testing.T) {
	analyze := testpeer.Require(t, "systemd-analyze", "systemd")
	strace := testpeer.Require(t, "strace", "strace")
	swaks := testpeer.Require(t, "swaks", "swaks")
	allowed := unitSyscallFilter(t, analyze)
	if !allowed["fdatasync"] || !allowed["mmap"] || !allowed["flock"] {
		t.Fatalf("the filter is missing the store's calls: %d calls allowed", len(allowed))
	}

	trace := filepath.Join(t.TempDir(), "strace.txt")
	d := startDaemon(t, strace, "-f", "-qq", "-o", trace)
	d.metrics(t)
	if resp, err := http.Get("http://" + d.desk + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz: %v", err)
	} else {
		resp.Body.Close()
	}
	if out, err := exec.Command(swaks, "--silent", "1", "--server", d.smtp, "--from", "joe@customer.example",
		"--to", "support@example.com", "--header", "Subject: strace", "--body", "hello").CombinedOutput(); err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	backup := exec.Command(buildDaemon(t), "backup", "--socket", d.socket, "--out", filepath.Join(t.TempDir(), "backup.db"))
	if out, err := backup.CombinedOutput(); err != nil {
		t.Fatalf("dirigent backup: %v\n%s", err, out)
	}
	// strace's child is the daemon: signal it, not strace.
	pid := daemonPID(t, d.cmd.Process.Pid)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.metrics(t) // served after the reload signal
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-d.done; err != nil {
		t.Errorf("the daemon under strace exited with %v after SIGTERM", err)
	}
	d.done <- nil

	used := straceCalls(t, trace)
	if len(used) < 20 {
		t.Fatalf("strace saw only %d distinct calls: %v", len(used), used)
	}
	for _, call := range used {
		if !allowed[call] {
			t.Errorf("the daemon calls %s, which the unit's SystemCallFilter refuses", call)
		}
	}
	t.Logf("%d distinct system calls, all allowed: %s", len(used), strings.Join(used, " "))
}

// daemonPID finds the child of strace (its tracee) by /proc.
func daemonPID(t *testing.T, stracePID int) int {
	t.Helper()
	id := strconv.Itoa(stracePID)
	raw, err := os.ReadFile(filepath.Join("/proc", id, "task", id, "children"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(raw))
	if len(f) != 1 {
		t.Fatalf("strace has children %q, want one", raw)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// straceCalls lists the distinct system calls in an strace -f -o file.
func straceCalls(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	r := bufio.NewReaderSize(f, 1<<16)
	for {
		line, err := r.ReadString('\n')
		if m := straceCall.FindStringSubmatch(line); m != nil {
			seen[m[1]] = true
		} else if m := straceAfter.FindStringSubmatch(line); m != nil {
			seen[m[1]] = true
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var calls []string
	for c := range seen {
		calls = append(calls, c)
	}
	sort.Strings(calls)
	return calls
}
