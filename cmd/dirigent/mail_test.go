package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"dirigent/internal/testpeer"
	"dirigent/internal/testrun"
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

// TestMailAttachmentOnTheDesk: a customer's mail with a PDF (sent by
// swaks) shows its attachment in the agent's thread, and the desk hands
// it out whole, as a download only, to agents and supervisors.
func TestMailAttachmentOnTheDesk(t *testing.T) {
	d, _ := deskDaemon(t, "", "", "")
	pdf := filepath.Join(t.TempDir(), "Rechnung März.pdf")
	content := []byte("%PDF-1.4\n" + strings.Repeat("Rechnungsposten\n", 20000))
	if err := os.WriteFile(pdf, content, 0o644); err != nil {
		t.Fatal(err)
	}
	anna := loginDesk(t, d.desk, "anna")
	anna.do(t, http.MethodPut, "/api/desk/me/presence", map[string]any{"presence": "available"}, nil)
	var me struct {
		ReplyMaxBytes     int `json:"reply_max_bytes"`
		ReplyMaxFiles     int `json:"reply_max_files"`
		ReplyMaxFileBytes int `json:"reply_max_file_bytes"`
	}
	if anna.do(t, http.MethodGet, "/api/desk/me", nil, &me); me.ReplyMaxBytes != 10_000_000 {
		t.Errorf("the page is told replies may have %d bytes, want mail.smarthost_max_bytes", me.ReplyMaxBytes)
	}
	if me.ReplyMaxFiles != 10 || me.ReplyMaxFileBytes != 10<<20 {
		t.Errorf("the page is told replies may carry %d files of %d bytes", me.ReplyMaxFiles, me.ReplyMaxFileBytes)
	}
	sendMail(t, d.smtp, "joe@example.org", "Rechnung", "Die Rechnung im Anhang stimmt nicht.", "--attach-type", "application/pdf", "--attach", "@"+pdf)
	id := acceptOffered(t, anna)
	var task struct {
		Thread []struct {
			ID          uint64             `json:"id"`
			Attachments []store.Attachment `json:"attachments"`
		} `json:"thread"`
	}
	anna.do(t, http.MethodGet, "/api/desk/tasks/"+id, nil, &task)
	want := store.Attachment{Name: "Rechnung März.pdf", Type: "application/pdf", Size: int64(len(content))}
	if len(task.Thread) != 1 || len(task.Thread[0].Attachments) != 1 || task.Thread[0].Attachments[0] != want {
		t.Fatalf("thread %+v, want one mail with %+v", task.Thread, want)
	}
	contact := strconv.FormatUint(task.Thread[0].ID, 10)
	sven := loginDesk(t, d.desk, "sven")
	for _, who := range []*deskClient{anna, sven} {
		resp, err := who.http.Get(d.desk + "/api/desk/contacts/" + contact + "/attachments/0")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(body, content) {
			t.Fatalf("download: %s, %d bytes", resp.Status, len(body))
		}
		for header, want := range map[string]string{
			"Content-Type":            "application/octet-stream",
			"Content-Disposition":     "attachment; filename*=utf-8''Rechnung%20M%C3%A4rz.pdf",
			"X-Content-Type-Options":  "nosniff",
			"Content-Security-Policy": "sandbox; default-src 'none'",
		} {
			if got := resp.Header.Get(header); got != want {
				t.Errorf("%s: %q, want %q", header, got, want)
			}
		}
	}
	for path, code := range map[string]int{
		"/api/desk/contacts/" + contact + "/attachments/1":  404,
		"/api/desk/contacts/" + contact + "/attachments/-1": 400,
		"/api/desk/contacts/999/attachments/0":              404,
	} {
		if got, answer := anna.try(t, http.MethodGet, path, nil); got != code {
			t.Errorf("GET %s: %d %s, want %d", path, got, answer, code)
		}
	}
	resp, err := http.Get(d.desk + "/api/desk/contacts/" + contact + "/attachments/0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("without a login: %s", resp.Status)
	}

	// A reply's files beyond the limits are refused, each for its reason.
	file := func(name string, size int) map[string]any {
		return map[string]any{"name": name, "type": "application/pdf", "data": make([]byte, size)}
	}
	eleven := []map[string]any{}
	for i := range 11 {
		eleven = append(eleven, file(fmt.Sprintf("%d.pdf", i), 10))
	}
	for _, tc := range []struct {
		files []map[string]any
		code  int
		want  string
	}{
		{eleven, 400, "11 files: at most 10"},
		{[]map[string]any{file("", 10)}, 400, "files[0].name: want a file name of 1 to 255 characters"},
		{[]map[string]any{file("a.pdf", 10), file("b\r\nBcc: x@example.org", 10)}, 400, "files[1].name: want a file name"},
		{[]map[string]any{file("gpj.\u202eexe", 10)}, 400, "files[0].name: want a file name"},
		{[]map[string]any{file("=?utf-8?b?ZXZpbC5leGU=?=", 10)}, 400, "files[0].name: want a file name"},
		{[]map[string]any{file("a.pdf", 5<<20), file("b.pdf", 5<<20+1)}, 400, "files larger than 10485760 bytes together"},
		{[]map[string]any{file("a.pdf", 8_000_000)}, 413, "the smarthost takes 10000000 (mail.smarthost_max_bytes)"},
	} {
		code, answer := anna.try(t, http.MethodPost, "/api/desk/tasks/"+id+"/reply", map[string]any{"text": "Anbei.", "files": tc.files})
		if code != tc.code || !strings.Contains(string(answer), tc.want) {
			t.Errorf("reply with %d files: %d %s, want %d %q", len(tc.files), code, answer, tc.code, tc.want)
		}
	}
	var out struct {
		ContactID uint64 `json:"contact_id"`
	}
	// Near the smarthost's limit, and typed as a mail program would take
	// for structure: it goes as an untyped file.
	anna.do(t, http.MethodPost, "/api/desk/tasks/"+id+"/reply", map[string]any{"text": "Anbei die richtige.", "files": []map[string]any{
		{"name": "Rechnung neu.mht", "type": "multipart/related", "data": make([]byte, 7_000_000)}}}, &out)
	anna.do(t, http.MethodGet, "/api/desk/tasks/"+id, nil, &task)
	if n := len(task.Thread); n != 2 || task.Thread[1].ID != out.ContactID || len(task.Thread[1].Attachments) != 1 || task.Thread[1].Attachments[0] != (store.Attachment{Name: "Rechnung neu.mht", Type: "application/octet-stream", Size: 7_000_000}) {
		t.Errorf("the thread after the reply: %+v", task.Thread)
	}
	// The reply's file is there to download too, from the outbox.
	resp, err = anna.http.Get(d.desk + "/api/desk/contacts/" + strconv.FormatUint(out.ContactID, 10) + "/attachments/0")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, make([]byte, 7_000_000)) {
		t.Errorf("the reply's file: %s, %d bytes", resp.Status, len(body))
	}
}

// TestReplyNotSentShowsOnTheDesk: a reply the smarthost refuses for now
// (a real smtp-sink answering every recipient 450) waits in the outbox,
// and the agent's thread says so, with the server's answer, until the
// agent gives it up; one it refuses for good (a real Postfix: 550 5.1.1,
// no such mailbox) bounces: the thread says it was not delivered, and the
// bounce comes back as a task with the conversation; a reply it takes is
// shown as sent, and cannot be given up.
func TestReplyNotSentShowsOnTheDesk(t *testing.T) {
	behindSink := func(flags ...string) func(t *testing.T) *runningDaemon {
		return func(t *testing.T) *runningDaemon {
			d, _ := deskDaemon(t, testpeer.SMTPSink(t, "", deskSinkDir(t), flags...), "", "")
			return d
		}
	}
	for _, tc := range []struct {
		name   string
		daemon func(t *testing.T) *runningDaemon
		state  string
	}{
		{"refused for now", behindSink("-r", "rcpt"), "waiting"},
		{"refused for good", deskBehindPostfix, "bounced"},
		{"taken", behindSink(), "sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.daemon(t)
			anna, id, reply := replyOnTheDesk(t, d, "joe@example.org")
			var task struct {
				Deliveries map[string]struct {
					Sent         time.Time `json:"sent"`
					Attempts     int       `json:"attempts"`
					LastError    string    `json:"last_error"`
					Bounced      time.Time `json:"bounced"`
					BounceReason string    `json:"bounce_reason"`
				} `json:"deliveries"`
			}
			key := strconv.FormatUint(reply, 10)
			testrun.Eventually(t, 20*time.Second, "the reply tried", func() bool {
				anna.do(t, http.MethodGet, "/api/desk/tasks/"+id, nil, &task)
				return task.Deliveries[key].Attempts > 0
			})
			dl := task.Deliveries[key]
			switch {
			case tc.state == "waiting" && (!dl.Sent.IsZero() || !dl.Bounced.IsZero() || !strings.Contains(dl.LastError, "smarthost answered 450 4.3.0")):
				t.Errorf("a reply refused for now: %+v", dl)
			case tc.state == "bounced" && (!dl.Sent.IsZero() || dl.Bounced.IsZero() || dl.BounceReason != "smarthost answered 550 5.1.1: <joe@example.org>: Recipient address rejected: User unknown in virtual mailbox table"):
				t.Errorf("a reply refused for good: %+v", dl)
			case tc.state == "sent" && (dl.Sent.IsZero() || dl.LastError != "" || !dl.Bounced.IsZero()):
				t.Errorf("a reply taken: %+v", dl)
			}
			code, answer := anna.try(t, http.MethodPost, "/api/desk/contacts/"+key+"/give-up", nil)
			switch tc.state {
			case "sent":
				if code != 409 || !strings.Contains(string(answer), "was sent") {
					t.Errorf("giving up a reply sent: %d %s", code, answer)
				}
				return
			case "bounced":
				if code != 200 || !strings.Contains(string(answer), `"bounced"`) || strings.Contains(string(answer), "gave_up") {
					t.Errorf("giving up a reply bounced: %d %s", code, answer)
				}
				bounceOffered(t, anna, id, reply, "550 5.1.1 <joe@example.org>: Recipient address rejected")
				return
			}
			var given struct {
				Delivery struct {
					GaveUp   time.Time `json:"gave_up"`
					GaveUpBy string    `json:"gave_up_by"`
				} `json:"delivery"`
			}
			if code != 200 || json.Unmarshal(answer, &given) != nil || given.Delivery.GaveUp.IsZero() || given.Delivery.GaveUpBy != "anna" {
				t.Fatalf("giving up: %d %s", code, answer)
			}
			if _, metrics := get(t, d.desk+"/metrics"); !strings.Contains(metrics, "dirigent_mail_outbox_messages 0") {
				t.Error("the reply given up still waits in the outbox")
			}
			if code, answer := anna.try(t, http.MethodPost, "/api/desk/contacts/"+id+"/give-up", nil); code != 404 {
				t.Errorf("giving up the customer's mail: %d %s", code, answer)
			}
		})
	}
}

// bounceOffered checks that the agent, holding task taskID, is offered
// the bounce of her reply (contact reply) as a second task, its thread
// the conversation with the bounce, whose text says why.
func bounceOffered(t *testing.T, agent *deskClient, taskID string, reply uint64, why string) {
	t.Helper()
	var tasks struct {
		Tasks []struct {
			ID uint64 `json:"id"`
		} `json:"tasks"`
	}
	testrun.Eventually(t, 10*time.Second, "the bounce offered", func() bool {
		agent.do(t, http.MethodGet, "/api/desk/tasks", nil, &tasks)
		return len(tasks.Tasks) == 2
	})
	bounce := tasks.Tasks[0].ID
	if strconv.FormatUint(bounce, 10) == taskID {
		bounce = tasks.Tasks[1].ID
	}
	var task struct {
		Thread []store.Contact `json:"thread"`
	}
	agent.do(t, http.MethodGet, "/api/desk/tasks/"+strconv.FormatUint(bounce, 10), nil, &task)
	if n := len(task.Thread); n != 3 || task.Thread[2].ID != bounce || task.Thread[2].BounceOf != reply || !strings.Contains(task.Thread[2].Text, why) {
		t.Errorf("the bounce's thread: %+v", task.Thread)
	}
}

// TestBounceReachesTheDesk: a reply the smarthost (a real Postfix) takes
// and then cannot deliver comes back as Postfix's bounce: the reply shows
// as not delivered, and the bounce as a task for its agent.
func TestBounceReachesTheDesk(t *testing.T) {
	d := deskBehindPostfix(t)
	anna, id, reply := replyOnTheDesk(t, d, "joe@bounce.example")
	bounceOffered(t, anna, id, reply, "unknown user")
	if code, answer := anna.try(t, http.MethodPost, "/api/desk/tasks/"+id+"/reply", map[string]any{"text": "Noch einmal.", "to": "kein Name"}); code != 400 || !strings.Contains(string(answer), "to: ") {
		t.Errorf("a reply to no address: %d %s", code, answer)
	}
	var task struct {
		Deliveries map[string]struct {
			Sent         time.Time `json:"sent"`
			Bounced      time.Time `json:"bounced"`
			BounceReason string    `json:"bounce_reason"`
		} `json:"deliveries"`
	}
	anna.do(t, http.MethodGet, "/api/desk/tasks/"+id, nil, &task)
	if dl := task.Deliveries[strconv.FormatUint(reply, 10)]; dl.Sent.IsZero() || dl.Bounced.IsZero() || dl.BounceReason != `joe@bounce.example: unknown user: "joe"` {
		t.Errorf("the reply bounced: %+v", dl)
	}
	// Counted once its batch is recorded, which the offer may overtake.
	testrun.Eventually(t, 10*time.Second, "the bounce counted", func() bool {
		_, metrics := get(t, d.desk+"/metrics")
		return strings.Contains(metrics, `dirigent_mail_messages_processed_total{outcome="bounce"} 1`)
	})
}

// deskBehindPostfix is the desk's daemon with a real Postfix as its
// smarthost, which hands the mail for example.com back to the daemon (see
// testpeer.Postfix).
func deskBehindPostfix(t *testing.T) *runningDaemon {
	t.Helper()
	smarthost := testpeer.FreeAddr(t)
	d, _ := deskDaemon(t, smarthost, "", "")
	testpeer.Postfix(t, smarthost, "example.com", d.smtp)
	return d
}

// replyOnTheDesk: anna, available, takes a mail from the customer at
// from (task id) and replies (contact reply).
func replyOnTheDesk(t *testing.T, d *runningDaemon, from string) (anna *deskClient, id string, reply uint64) {
	t.Helper()
	anna = loginDesk(t, d.desk, "anna")
	anna.do(t, http.MethodPut, "/api/desk/me/presence", map[string]any{"presence": "available"}, nil)
	sendMail(t, d.smtp, from, "Rechnung", "Die Rechnung stimmt nicht.")
	id = acceptOffered(t, anna)
	var out struct {
		ContactID uint64 `json:"contact_id"`
	}
	anna.do(t, http.MethodPost, "/api/desk/tasks/"+id+"/reply", map[string]any{"text": "Wir prüfen das."}, &out)
	return anna, id, out.ContactID
}
