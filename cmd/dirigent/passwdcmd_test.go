package main

import (
	"net/http"
	"strings"
	"testing"
)

// runPasswd runs `dirigent passwd` with the password on stdin.
func runPasswd(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	cmd := dirigentCmd(t, nil, append([]string{"passwd"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return exitStatus(err), string(out)
}

func deskLogin(t *testing.T, base, user, password string) int {
	t.Helper()
	resp, err := http.Post(base+"/api/desk/login", "application/json", strings.NewReader(`{"user":"`+user+`","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestPasswd(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "[[agents]]\nid = \"anna\"\nskills = { support = 1 }\n")
	for _, tt := range []struct {
		name, stdin string
		args        []string
		status      int
		out         string
	}{
		{"no user", "", nil, 2, "usage: dirigent passwd [--config FILE | --socket PATH] USER   (the password is read from the terminal or stdin)\n"},
		{"no login", deskPassword + "\n", []string{"--config", cfgPath, "mallory"}, 2, `"mallory" is no desk login: add it to [[agents]], desk.supervisors or desk.admins first` + "\n"},
		{"short", "kurz\n", []string{"--config", cfgPath, "anna"}, 2, "password too short: at least 10 characters\n"},
		{"nothing on stdin", "", []string{"--config", cfgPath, "anna"}, 2, "no password on stdin\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, out := runPasswd(t, tt.stdin, tt.args...)
			if status != tt.status || out != tt.out {
				t.Errorf("exit %d, %q; want %d, %q", status, out, tt.status, tt.out)
			}
		})
	}

	// Before the first start the store is written directly.
	status, out := runPasswd(t, deskPassword+"\n", "--config", cfgPath, "anna")
	if status != 0 || !strings.Contains(out, "password of anna set (in ") || !strings.Contains(out, "dirigent was not running") {
		t.Fatalf("passwd without a daemon: %d %s", status, out)
	}
	d := startDaemon(t, cfgPath)
	anna := loginDesk(t, d.desk, "anna") // with the password set offline
	// While it runs, through the control socket, at once, and whoever
	// logged in with the old password is out.
	status, out = runPasswd(t, "zweites-passwort\n", "--config", cfgPath, "anna")
	if status != 0 || out != "password of anna set; 1 desk session(s) with the old one ended\n" {
		t.Fatalf("passwd with the daemon running: %d %s", status, out)
	}
	if code, body := anna.try(t, http.MethodGet, "/api/desk/me", nil); code != 401 {
		t.Errorf("session from before the change: %d %s, want 401", code, body)
	}
	if code := deskLogin(t, d.desk, "anna", deskPassword); code != 401 {
		t.Errorf("old password: %d, want 401", code)
	}
	if code := deskLogin(t, d.desk, "anna", "zweites-passwort"); code != 200 {
		t.Errorf("new password: %d, want 200", code)
	}
}
