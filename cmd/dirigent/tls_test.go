package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"dirigent/internal/testpeer"
)

// TestDeskAndChatOverTLS: with certificates configured the desk and the
// chat widget speak HTTPS only, the desk's session cookie is Secure, and
// a reload serves a certificate renewed in place, without a restart.
func TestDeskAndChatOverTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := testpeer.SelfSigned(t, t.TempDir())
	cfgPath := writeConfig(t, dir, "[[agents]]\nid = \"anna\"\nskills = { support = 1 }\n")
	files := "tls_cert = \"" + cert + "\"\ntls_key = \"" + key + "\"\n"
	setInConfig(t, cfgPath, "desk", files)
	setInConfig(t, cfgPath, "chat", files)
	d := startDaemon(t, cfgPath)
	if status, out := runPasswd(t, deskPassword+"\n", "--config", cfgPath, "anna"); status != 0 {
		t.Fatalf("passwd anna: %d %s", status, out)
	}
	deskURL := strings.Replace(d.desk, "http://", "https://", 1)

	trusting := func(certFile string) *http.Client {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(mustRead(t, certFile))) {
			t.Fatalf("no certificate in %s", certFile)
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	client := trusting(cert)
	for _, url := range []string{deskURL + "/healthz", "https://" + d.chat + "/widget.js"} {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.TLS == nil {
			t.Errorf("GET %s: %s", url, resp.Status)
		}
	}
	if resp, err := http.Get(d.desk + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("the desk answers plain HTTP too")
		}
	}
	resp, err := client.Post(deskURL+"/api/desk/login", "application/json", strings.NewReader(`{"user":"anna","password":"`+deskPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c := resp.Cookies(); resp.StatusCode != 200 || len(c) != 1 || !c[0].Secure {
		t.Errorf("login over TLS: %s, cookies %v", resp.Status, c)
	}

	// Renewed in place, then a reload. The client trusting only the new
	// certificate fails against the old one.
	presented := func(c *http.Client, want string) {
		t.Helper()
		c.CloseIdleConnections()
		resp, err := c.Get(deskURL + "/healthz")
		if err != nil {
			t.Fatalf("GET /healthz: %v", err)
		}
		resp.Body.Close()
		if block, _ := pem.Decode([]byte(mustRead(t, want))); block == nil || !bytes.Equal(resp.TLS.PeerCertificates[0].Raw, block.Bytes) {
			t.Errorf("the desk presents another certificate than %s", want)
		}
	}
	presented(client, cert)
	newCert, newKey := testpeer.SelfSigned(t, t.TempDir())
	writeFile(t, cert, mustRead(t, newCert))
	writeFile(t, key, mustRead(t, newKey))
	// (The plain request above is no warning: a failed handshake is
	// logged at debug level.)
	if warned := d.reload(t); len(warned) != 0 {
		t.Errorf("the reload warned: %v", warned)
	}
	renewed := trusting(newCert)
	presented(renewed, newCert)
	// A broken renewal: the reload is refused, and the certificate served
	// stays.
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	if line := d.waitLog(t, "reload refused, the running configuration stays"); !strings.Contains(line["err"].(string), "desk.tls_key: certificate "+cert+" with key "+key) {
		t.Errorf("refused for %v", line["err"])
	}
	resp, err = renewed.Get(deskURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "dirigent_config_last_reload_successful 0") {
		t.Error("a refused reload, but dirigent_config_last_reload_successful is not 0")
	}
	presented(renewed, newCert)
	// check-config says so; an admin command, which only looks up the
	// control socket in the file, still reaches the daemon.
	out, err := dirigentCmd(t, nil, "check-config", cfgPath).CombinedOutput()
	if status := exitStatus(err); status != 2 || !strings.Contains(string(out), "desk.tls_key: certificate "+cert+" with key "+key) {
		t.Errorf("check-config with the broken key: %d %s", status, out)
	}
	if status, out := runPasswd(t, deskPassword+"\n", "--config", cfgPath, "anna"); status != 0 {
		t.Errorf("passwd with the broken key in the file: %d %s", status, out)
	}
}
