package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"dirigent/internal/testpeer"
	"dirigent/internal/testrun"
)

// TestCallThroughTheDaemon: the real daemon from a configuration file; a
// sipp phone registers as anna's (which makes her available), a sipp
// caller calls the number, the router's offer rings anna's phone through
// the daemon's offer fan-out, the phone answers and hangs up, and both
// legs end: the caller's sipp passes only when it got the BYE.
func TestCallThroughTheDaemon(t *testing.T) {
	sipp := testpeer.Require(t, "sipp", "sip-tester")
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, `[[agents]]
id = "anna"
skills = { support = 2 }
[[sip.users]]
user = "anna"
password = "geheim"
agent = "anna"
[[sip.trunks]]
name = "local"
cidrs = ["127.0.0.0/8"]
[[sip.numbers]]
number = "+4930123456"
queue = "support"
`)
	setInConfig(t, cfgPath, "sip", "available_on_register = true\n")
	d := startDaemon(t, cfgPath)
	registerPhone(t, d, "anna", "geheim")
	caller := exec.Command(sipp, d.sip, "-sf", "../../sip/testdata/caller.xml", "-i", "127.0.0.1", "-p", freeUDPPort(t), "-nostdin", "-m", "1",
		"-timeout", "20s", "-timeout_error",
		"-key", "dialled", "+4930123456", "-key", "caller", "03055560001", "-key", "mip", "127.0.0.1", "-key", "mport", freeUDPPort(t))
	if out, err := caller.CombinedOutput(); err != nil {
		t.Fatalf("sipp caller: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, metrics := get(t, d.desk+"/metrics")
		if strings.Contains(metrics, `dirigent_sip_calls_total{outcome="answered"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call was not counted as answered:\n%s", grepLines(metrics, "dirigent_sip_"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// registerPhone registers a sipp phone (answering calls) with the
// daemon as user, which makes anna available, and waits until /metrics
// shows both.
func registerPhone(t *testing.T, d *runningDaemon, user, password string) {
	t.Helper()
	sipp := testpeer.Require(t, "sipp", "sip-tester")
	phone := exec.Command(sipp, d.sip, "-sf", "../../sip/testdata/agent-register.xml", "-oocsf", "../../sip/testdata/agent-answer.xml",
		"-i", "127.0.0.1", "-p", freeUDPPort(t), "-mp", freeUDPPort(t), "-rtp_echo", "-nostdin", "-m", "1", "-d", "500",
		"-s", user, "-au", user, "-ap", password)
	if err := phone.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		phone.Process.Kill()
		phone.Wait()
	})
	phones(t, d, 1, "available")
}

// phones waits until /metrics shows n registered phones and anna with
// presence.
func phones(t *testing.T, d *runningDaemon, n int, presence string) {
	t.Helper()
	var metrics string
	defer func() {
		if t.Failed() {
			t.Log(grepLines(metrics, "dirigent_sip_registrations", "dirigent_router_agents"))
		}
	}()
	testrun.Eventually(t, 10*time.Second, fmt.Sprintf("%d phones registered, anna %s", n, presence), func() bool {
		_, metrics = get(t, d.desk+"/metrics")
		return strings.Contains(metrics, fmt.Sprintf("dirigent_sip_registrations %d\n", n)) &&
			strings.Contains(metrics, fmt.Sprintf("dirigent_router_agents{presence=%q} 1\n", presence))
	})
}

// TestReloadAppliesSIPAccounts: a reload with anna's SIP password
// changed forgets her registered phone (she goes offline, with
// available_on_register) and refuses the old password, at once and
// without a restart warning; the phone registers with the new one.
func TestReloadAppliesSIPAccounts(t *testing.T) {
	sipp := testpeer.Require(t, "sipp", "sip-tester")
	dir := t.TempDir()
	account := func(password string) string {
		return "[[agents]]\nid = \"anna\"\nskills = { support = 2 }\n[[sip.users]]\nuser = \"anna\"\npassword = \"" + password + "\"\nagent = \"anna\"\n"
	}
	cfgPath := writeConfig(t, dir, account("geheim"))
	setInConfig(t, cfgPath, "sip", "available_on_register = true\n")
	d := startDaemon(t, cfgPath)
	registerPhone(t, d, "anna", "geheim")

	writeConfig(t, dir, account("neu-geheim"))
	setInConfig(t, cfgPath, "sip", "available_on_register = true\n")
	if warned := d.reload(t); len(warned) > 0 {
		t.Errorf("the reload warned: %v", warned)
	}
	phones(t, d, 0, "offline")
	refused := exec.Command(sipp, d.sip, "-sf", "../../sip/testdata/register-refused.xml", "-i", "127.0.0.1", "-p", freeUDPPort(t),
		"-nostdin", "-m", "1", "-timeout", "10s", "-timeout_error", "-s", "anna", "-au", "anna", "-ap", "geheim")
	if out, err := refused.CombinedOutput(); err != nil {
		t.Fatalf("the old password: %v\n%s", err, out)
	}
	registerPhone(t, d, "anna", "neu-geheim")
}

func grepLines(text string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}
