package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"dirigent/internal/testpeer"
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
	target := d.sip
	agent := exec.Command(sipp, target, "-sf", "../../sip/testdata/agent-register.xml", "-oocsf", "../../sip/testdata/agent-answer.xml",
		"-i", "127.0.0.1", "-p", freeUDPPort(t), "-mp", freeUDPPort(t), "-rtp_echo", "-nostdin", "-m", "1", "-d", "500",
		"-s", "anna", "-au", "anna", "-ap", "geheim")
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		agent.Process.Kill()
		agent.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, metrics := get(t, d.desk+"/metrics")
		if strings.Contains(metrics, "dirigent_sip_registrations 1") && strings.Contains(metrics, `dirigent_router_agents{presence="available"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("anna's phone not registered, or anna not available:\n%s", grepLines(metrics, "dirigent_sip_registrations", "dirigent_router_agents"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	caller := exec.Command(sipp, target, "-sf", "../../sip/testdata/caller.xml", "-i", "127.0.0.1", "-p", freeUDPPort(t), "-nostdin", "-m", "1",
		"-timeout", "20s", "-timeout_error",
		"-key", "dialled", "+4930123456", "-key", "caller", "03055560001", "-key", "mip", "127.0.0.1", "-key", "mport", freeUDPPort(t))
	if out, err := caller.CombinedOutput(); err != nil {
		t.Fatalf("sipp caller: %v\n%s", err, out)
	}
	deadline = time.Now().Add(10 * time.Second)
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
