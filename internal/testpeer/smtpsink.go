package testpeer

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// SMTPSink starts postfix's smtp-sink on addr (a free loopback port when
// empty), dumping every message it receives into a file in dir, and
// returns the address once it listens. It ends with the test. extra are
// more of smtp-sink's options ("-f", "rcpt": refuse every recipient).
func SMTPSink(t testing.TB, addr, dir string, extra ...string) string {
	t.Helper()
	bin := Require(t, "smtp-sink", "postfix")
	if addr == "" {
		addr = FreeAddr(t)
	}
	args := append([]string{"-d", filepath.Join(dir, "%M.")}, extra...)
	if os.Getuid() == 0 {
		args = append(args, "-u", "postfix") // it refuses to run as root
	}
	cmd := exec.Command(bin, append(args, addr, "10")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatal("smtp-sink does not listen")
		}
	}
}
