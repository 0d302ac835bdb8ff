package testpeer

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Postfix starts a private Postfix, the MTA sites use as their smarthost,
// on addr (a free loopback port when empty), and returns the address
// once it listens; it stops with the test. It relays for loopback clients, as a site's smarthost does for
// its own servers, and:
//   - refuses, at RCPT, recipients at example.org (a domain it keeps
//     mailboxes for) but known@example.org: 550 5.1.1 User unknown;
//   - takes mail for anyone at bounce.example (its own domain), then
//     bounces it, there being no such user: a real delivery status
//     notification to the sender;
//   - delivers mail for returnDomain (the bounces too) to returnAddr.
//
// Postfix runs only as root; without root the test is skipped, or fails
// under DIRIGENT_REQUIRE_PEERS=1.
func Postfix(t testing.TB, addr, returnDomain, returnAddr string) string {
	t.Helper()
	RequireRoot(t, "Postfix")
	bin := Require(t, "postfix", "postfix")
	owner, err := user.Lookup("postfix")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(owner.Uid)
	if addr == "" {
		addr = FreeAddr(t)
	}

	dir, err := os.MkdirTemp("", "dirigent-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf, queue, data := filepath.Join(dir, "conf"), filepath.Join(dir, "queue"), filepath.Join(dir, "data")
	for _, d := range []string{conf, queue, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil { // postfix's own daemons walk it
		t.Fatal(err)
	}
	if err := os.Chown(data, uid, -1); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(conf, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("recipients", "known@example.org x\n")
	returnHost, returnPort, err := net.SplitHostPort(returnAddr)
	if err != nil {
		t.Fatal(err)
	}
	write("transport", fmt.Sprintf("%s smtp:[%s]:%s\n", returnDomain, returnHost, returnPort))
	write("main.cf", fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %s
data_directory = %s
mail_owner = postfix
setgid_group = postdrop
myhostname = smarthost.test
mydomain = smarthost.test
myorigin = smarthost.test
mydestination = bounce.example
local_recipient_maps =
virtual_mailbox_domains = example.org
virtual_mailbox_maps = texthash:%[3]s/recipients
virtual_mailbox_base = %[4]s
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
transport_maps = texthash:%[3]s/transport
smtp_host_lookup = native
maillog_file = /dev/stdout
`, queue, data, conf, filepath.Join(dir, "mailboxes")))
	// Postfix reads a main.cf younger than about two seconds again and
	// again until it is older (2.1 s at every start, measured); this one
	// is whole.
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(conf, "main.cf"), hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	// Debian's services, on the test's port and without a chroot (which
	// would need a copy of /etc in the queue directory); written here, not
	// copied from the host's, which a site may have changed.
	write("master.cf", addr+" inet n - n - - smtpd\n"+postfixServices)

	logPath := filepath.Join(dir, "log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own
	log := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
	if out, err := exec.Command(bin, "-c", conf, "check").CombinedOutput(); err != nil { // makes the queue's directories
		t.Fatalf("postfix check: %v\n%s", err, out)
	}
	daemons, err := exec.Command(Require(t, "postconf", "postfix"), "-h", "daemon_directory").Output()
	if err != nil {
		t.Fatal(err)
	}
	// The master daemon itself, in the foreground and leading a process
	// group of its own (its services), so that the test stops them all;
	// and with an end, should the test's process die without stopping it.
	lifetime := 30 * time.Minute
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if end, ok := d.Deadline(); ok {
			lifetime = time.Until(end) + time.Minute
		}
	}
	cmd := exec.Command(filepath.Join(strings.TrimSpace(string(daemons)), "master"), "-c", conf, "-d", "-e", strconv.Itoa(int(lifetime.Seconds())))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		group := -cmd.Process.Pid
		syscall.Kill(group, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
		syscall.Kill(group, syscall.SIGKILL) // what lingers
		<-exited
		if t.Failed() {
			t.Logf("postfix's log:\n%s", log())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(log(), "daemon started"); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("postfix did not start:\n%s", log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix did not start on %s:\n%s", addr, log())
		}
	}
	return addr
}

// postfixServices are Debian's master.cf services, none in a chroot.
const postfixServices = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`
