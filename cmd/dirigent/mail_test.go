package main

import (
	"fmt"
	"log/slog"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"dirigent/internal/testpeer"
	"dirigent/store"
)

// TestKill9DuringIncomingMail: 16 senders stream mail into the daemon,
// which is killed with SIGKILL mid-stream. Every message that got 250 is
// in the store after the kill, and none is there twice.
func TestKill9DuringIncomingMail(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "")
	// The rate limit is for strangers on the internet, not this test.
	setInConfig(t, cfgPath, "mail", "messages_per_minute_per_ip = 100000\nmax_connections_per_ip = 100\n")
	d := startDaemon(t, cfgPath)

	var mu sync.Mutex
	acked := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				subject := fmt.Sprintf("kill9-%d-%d", w, i)
				msg := "From: joe@example.org\r\nTo: support@example.com\r\nSubject: " + subject + "\r\n\r\nGuten Tag.\r\n"
				if err := smtp.SendMail(d.smtp, nil, "joe@example.org", []string{"support@example.com"}, []byte(msg)); err != nil {
					return // the daemon is gone
				}
				mu.Lock()
				acked[subject] = true
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	close(stop)
	wg.Wait()
	<-d.exited
	d.exited <- nil // for the cleanup

	st, err := store.Open(store.Options{Path: filepath.Join(dir, "data", "dirigent.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored, err := st.MailCount()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for id := uint64(1); id <= uint64(stored); id++ { // IDs are given in order, none deleted here
		_, raw, err := st.Mail(id)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(raw), "Subject: ")
		subject, _, _ := strings.Cut(rest, "\r\n")
		seen[subject]++
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 100 {
		t.Fatalf("only %d messages acknowledged before the kill", len(acked))
	}
	for s := range acked {
		if seen[s] != 1 {
			t.Errorf("acknowledged %s is in the store %d times", s, seen[s])
		}
	}
	for s, n := range seen {
		if n > 1 {
			t.Errorf("%s stored %d times", s, n)
		}
	}
	t.Logf("%d acknowledged, %d stored (a message stored but killed before its 250 may be there once)", len(acked), stored)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A mail sent with swaks becomes a waiting task of the support queue.
func TestMailIntoTheQueue(t *testing.T) {
	swaks := testpeer.Require(t, "swaks", "swaks")
	d := startDaemon(t, writeConfig(t, t.TempDir(), ""))
	host, port, _ := strings.Cut(d.smtp, ":")
	out, err := exec.Command(swaks, "--server", host, "--port", port, "--from", "joe@example.org", "--to", "support@example.com",
		"--header", "Subject: Hilfe", "--body", "Mein Router blinkt rot.").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, metrics := get(t, d.desk+"/metrics")
		if strings.Contains(metrics, `dirigent_mail_messages_processed_total{outcome="new"} 1`) &&
			strings.Contains(metrics, `dirigent_router_tasks_waiting{queue="support"} 1`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mail did not become a waiting task:\n%s", metrics)
		}
	}
}
