package mail

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"dirigent/internal/testpeer"
	"dirigent/store"
)

// dovecot starts a real dovecot IMAP server on loopback with one user,
// joe/secret, and returns its address.
func dovecot(t *testing.T) string {
	t.Helper()
	bin := testpeer.Require(t, "dovecot", "dovecot-imapd")
	testpeer.RequireRoot(t, "dovecot (it switches to the mail user it is given)")
	dir, err := os.MkdirTemp("", "dirigent-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	os.Mkdir(home, 0o755)
	exec.Command("chown", nobody.Uid+":"+nobody.Gid, home).Run()
	os.WriteFile(filepath.Join(dir, "passwd"), []byte("joe:{PLAIN}secret\n"), 0o644)
	addr := testpeer.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
  mailbox Processed {
    auto = create
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/passwd
}
userdb {
  driver = static
  args = uid=%[2]s gid=%[3]s home=%[4]s/%%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[5]s
  }
  inet_listener imaps {
    port = 0
  }
  chroot =
}
service anvil {
  chroot =
}
`, dir, nobody.Uid, nobody.Gid, home, port)
	cfg := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(cfg, []byte(conf), 0o644)
	// dovecot daemonizes; its output goes to a file, since a pipe would be
	// held open by the daemon and never end.
	out, err := os.Create(filepath.Join(dir, "start.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	start := exec.Command(bin, "-c", cfg)
	start.Stdout, start.Stderr = out, out
	if err := start.Run(); err != nil {
		log, _ := os.ReadFile(out.Name())
		t.Fatalf("dovecot: %v\n%s", err, log)
	}
	t.Cleanup(func() { exec.Command(bin, "-c", cfg, "stop").Run() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Fatalf("dovecot does not listen:\n%s", log)
		}
	}
}

// joe logs in to joe's mailbox; the client closes when the test ends.
func joe(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	cl, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if err := cl.Login("joe", "secret").Wait(); err != nil {
		t.Fatal(err)
	}
	return cl
}

// deliver appends messages to joe's mailbox, as an MTA would.
func deliver(t *testing.T, addr string, subjects ...string) {
	t.Helper()
	cl := joe(t, addr)
	for _, s := range subjects {
		msg := "From: kunde@example.org\r\nTo: support@example.com\r\nSubject: " + s + "\r\nMessage-ID: <" + strings.ReplaceAll(s, " ", "-") + "@example.org>\r\n\r\nText zu " + s + "\r\n"
		cmd := cl.Append("INBOX", int64(len(msg)), nil)
		cmd.Write([]byte(msg))
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
}

// seen returns the number of messages in folder and how many are \Seen.
func seen(t *testing.T, addr, folder string) (all, seenN int) {
	t.Helper()
	cl := joe(t, addr)
	defer cl.Close()
	sel, err := cl.Select(folder, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return 0, 0
	}
	var all1 imap.SeqSet
	all1.AddRange(1, sel.NumMessages)
	msgs, err := cl.Fetch(all1, &imap.FetchOptions{Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		for _, f := range m.Flags {
			if f == imap.FlagSeen {
				seenN++
			}
		}
	}
	return int(sel.NumMessages), seenN
}

func waitMails(t *testing.T, s *site, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, _ := s.st.MailCount()
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			t.Fatalf("%d mails stored, want %d", got, n)
		}
	}
}

func TestIMAPFetchMarksSeenAndNeverTwice(t *testing.T) {
	addr := dovecot(t)
	deliver(t, addr, "erste Frage", "zweite Frage")
	mb := MailboxConfig{Name: "support", Addr: addr, TLS: "none", User: "joe", Password: "secret", Poll: 200 * time.Millisecond}
	s := startSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}, Mailboxes: []MailboxConfig{mb}})
	waitMails(t, s, 2)
	// New mail arrives while dirigent waits (IDLE).
	deliver(t, addr, "dritte Frage")
	waitMails(t, s, 3)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if all, n := seen(t, addr, "INBOX"); all == 3 && n == 3 {
			break
		}
		if time.Now().After(deadline) {
			all, n := seen(t, addr, "INBOX")
			t.Fatalf("%d of %d messages marked seen", n, all)
		}
	}
	waitProcessed(t, s.st, 3)
	if got := len(s.journeyOf(t, "kunde@example.org")); got != 3 {
		t.Errorf("the customer has %d contacts, want 3", got)
	}
}

func TestIMAPRestartAndNewUIDValidityStoreNothingTwice(t *testing.T) {
	addr := dovecot(t)
	deliver(t, addr, "eins", "zwei")
	mb := MailboxConfig{Name: "support", Addr: addr, TLS: "none", User: "joe", Password: "secret", MoveTo: "Processed", Poll: 200 * time.Millisecond}
	s := startSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}, Mailboxes: []MailboxConfig{mb}})
	waitMails(t, s, 2)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		inbox, _ := seen(t, addr, "INBOX")
		done, _ := seen(t, addr, "Processed")
		if inbox == 0 && done == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("INBOX %d, Processed %d; want the 2 moved", inbox, done)
		}
	}
	// As after a crash between storing and moving, or a renumbered
	// mailbox: the state is lost and the messages are offered again.
	if err := s.st.SetFetchState(t.Context(), "support", store0()); err != nil {
		t.Fatal(err)
	}
	deliver(t, addr, "eins", "drei") // "eins" again, same Message-ID
	waitMails(t, s, 3)
	time.Sleep(500 * time.Millisecond) // two poll rounds: nothing more may come
	if n, _ := s.st.MailCount(); n != 3 {
		t.Errorf("%d mails stored, want 3: eins, zwei, drei", n)
	}
}

func store0() store.FetchState { return store.FetchState{} }
