package mail

import (
	"context"
	"errors"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"dirigent/internal/testpeer"
	"dirigent/internal/testrun"
	"dirigent/router"
	"dirigent/store"
)

// postfixBounce is the corpus's delivery report from Postfix, about the
// message with Message-ID mid.
func postfixBounce(t *testing.T, mid string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "corpus", "postfix-bounce.eml"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.ReplaceAll(string(raw), "dg-5f1c2a9e0b7d4c3a8e6f1b2d@dirigent.example.com", mid))
}

// sendReport delivers a delivery report as the mail system does, from
// the null sender, and waits until it is processed.
func (s *site) sendReport(t *testing.T, raw []byte) {
	t.Helper()
	before, _ := s.st.MailCount()
	if err := smtp.SendMail(s.ch.SMTPAddr().String(), nil, "", []string{"support@example.com"}, raw); err != nil {
		t.Fatal(err)
	}
	waitProcessed(t, s.st, before+1)
}

// nextOffer waits for the router's next offer.
func (s *site) nextOffer(t *testing.T) router.Offer {
	t.Helper()
	select {
	case o := <-s.offers:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no offer")
		return router.Offer{}
	}
}

// A delivery report about an agent's reply comes back into its
// conversation as a task for an agent, in the queue of the customer's
// mail, and the reply shows as not delivered; the mail system does not
// become a customer, and the next reply still goes to the customer.
func TestBounceOfAReplyComesBackToAnAgent(t *testing.T) {
	s, dir := siteWithSink(t, "")
	if err := s.router.SetPresence("anna", router.Available, ""); err != nil {
		t.Fatal(err)
	}
	s.send(t, "joe@example.org", "Subject: Rechnung falsch\r\nMessage-ID: <m1@example.org>", "Meine Rechnung stimmt nicht.")
	first := s.nextOffer(t)
	if err := s.router.Accept(first.TaskID, "anna"); err != nil {
		t.Fatal(err)
	}
	joe := s.journeyOf(t, "joe@example.org")
	out, err := s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", "Wir prüfen das.")
	if err != nil {
		t.Fatal(err)
	}
	received(t, s, dir)

	s.sendReport(t, postfixBounce(t, out.MessageID))
	joe = s.journeyOf(t, "joe@example.org")
	if len(joe) != 3 {
		t.Fatalf("Joe's journey has %d contacts, want 3", len(joe))
	}
	back := joe[2]
	if back.Direction != "in" || back.BounceOf != joe[1].ID || back.ConversationID != joe[0].ConversationID ||
		back.Queue != "billing" || back.Intent != "billing" || back.Outcome != "" || back.Subject != "Undelivered Mail Returned to Sender" {
		t.Errorf("the bounce's contact: %+v", back)
	}
	if o := s.nextOffer(t); o.TaskID != back.ID || o.Queue != "billing" || o.Agent != "anna" {
		t.Errorf("the bounce's offer %+v, want task %d in billing to anna", o, back.ID)
	}
	m, err := s.st.OutboundStatus(out.ID)
	if err != nil || m.Sent.IsZero() || m.Bounced.IsZero() ||
		m.BounceReason != "joe@example.org: 550 5.1.1 <joe@example.org>: Recipient address rejected: User unknown in virtual mailbox table" {
		t.Errorf("the reply's record: %+v %v", m, err)
	}
	if _, err := s.st.LookupIdentity("email:mailer-daemon@mx.example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the mail system became a customer: %v", err)
	}
	if n := processedCount(t, s.ch.metrics, "bounce"); n != 1 {
		t.Errorf("%v messages counted as bounces", n)
	}

	// The agent's next reply goes to Joe again, not to the mail system.
	if err := os.Remove(firstFile(t, dir)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", "Bitte rufen Sie uns an."); err != nil {
		t.Fatal(err)
	}
	if to, _ := received(t, s, dir).Header.AddressList("To"); len(to) != 1 || to[0].Address != "joe@example.org" {
		t.Errorf("the reply after the bounce went to %v", to)
	}
}

func firstFile(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no file in %s: %v", dir, err)
	}
	return files[0]
}

// A bounce of the automatic acknowledgement shows in the conversation,
// the acknowledgement as not delivered, but makes no task: nobody wrote
// it.
func TestBounceOfAnAcknowledgementMakesNoTask(t *testing.T) {
	s, dir := siteWithSink(t, "Danke! Ihre Nummer: {tag}")
	s.send(t, "joe@example.org", "Subject: Hilfe", "Bitte melden.")
	ack, err := received(t, s, dir).Header.MessageID()
	if err != nil {
		t.Fatal(err)
	}
	s.sendReport(t, postfixBounce(t, ack))
	joe := s.journeyOf(t, "joe@example.org")
	if len(joe) != 3 || joe[2].BounceOf != joe[1].ID || joe[2].Outcome != "automatic" {
		t.Fatalf("Joe's journey: %+v", joe)
	}
	m, err := s.st.OutboundStatus(joe[1].OutboundID)
	if err != nil || m.Bounced.IsZero() {
		t.Errorf("the acknowledgement's record: %+v %v", m, err)
	}
	offered := 0
	for _, q := range s.router.Stats() {
		offered += q.Today.Offered
	}
	if offered != 1 {
		t.Errorf("%d tasks, want 1 (Joe's mail; none for the bounce)", offered)
	}
}

// A delivery report about a message that is no reply of ours (spam sent
// in the site's name) stays what any robot's mail is: in the sender's
// journey, with no task.
func TestBounceOfAStrangersMessageStaysAutomatic(t *testing.T) {
	s := startSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}})
	s.sendReport(t, postfixBounce(t, "spam-1@elsewhere.example"))
	robot := s.journeyOf(t, "mailer-daemon@mx.example.org")
	if len(robot) != 1 || robot[0].Outcome != "automatic" || robot[0].BounceOf != 0 {
		t.Errorf("the report: %+v", robot)
	}
	if n := processedCount(t, s.ch.metrics, "automatic"); n != 1 {
		t.Errorf("%v messages counted automatic", n)
	}
}

// A reply the smarthost refuses for good (a real smtp-sink refusing its
// recipient with a 5xx) is not tried again: a delivery report comes back
// into the conversation as for a bounce from further on. A 4xx is tried
// again.
func TestReplyRefusedForGoodBounces(t *testing.T) {
	for _, hard := range []bool{true, false} {
		t.Run(map[bool]string{true: "5xx", false: "4xx"}[hard], func(t *testing.T) {
			flag := map[bool]string{true: "-f", false: "-r"}[hard]
			addr := testpeer.SMTPSink(t, "", sinkDir(t), flag, "rcpt")
			s := startSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}, Smarthost: SmarthostConfig{Addr: addr, TLS: "none", RetryBase: 50 * time.Millisecond}})
			s.send(t, "joe@example.org", "Subject: Hilfe", "Bitte melden.")
			out, err := s.ch.Reply(context.Background(), s.journeyOf(t, "joe@example.org")[0].ConversationID, "anna", "Wir melden uns.")
			if err != nil {
				t.Fatal(err)
			}
			if !hard {
				testrun.Eventually(t, 10*time.Second, "two attempts", func() bool {
					m, err := s.st.OutboundStatus(out.ID)
					return err == nil && m.Attempts >= 2
				})
				m, _ := s.st.OutboundStatus(out.ID)
				if !m.Bounced.IsZero() || !strings.Contains(m.LastError, "smarthost answered 450 4.3.0") {
					t.Errorf("a reply refused for now: %+v", m)
				}
				return
			}
			testrun.Eventually(t, 10*time.Second, "the refusal's report processed", func() bool {
				j := s.journeyOf(t, "joe@example.org")
				return len(j) == 3
			})
			m, err := s.st.OutboundStatus(out.ID)
			if err != nil || m.Bounced.IsZero() || m.Attempts != 1 || m.BounceReason != "smarthost answered 500 5.3.0: Error: command failed" {
				t.Errorf("the reply's record: %+v %v", m, err)
			}
			if n, _ := s.st.OutboxDepth(); n != 0 {
				t.Errorf("the refused reply still waits in the outbox (%d)", n)
			}
			joe := s.journeyOf(t, "joe@example.org")
			if back := joe[2]; back.BounceOf != joe[1].ID || back.Outcome != "" || !strings.Contains(back.Text, "refused the reply to joe@example.org for good") || !strings.Contains(back.Text, "500 5.3.0 Error: command failed") {
				t.Errorf("the refusal's contact: %+v", back)
			}
			if _, err := s.st.LookupIdentity("email:mailer-daemon@dirigent.test"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the report's sender became a customer: %v", err)
			}
		})
	}
}

// Only a 5xx about the reply itself refuses it for good; one about
// dirigent's sender or set-up (5.7.x: relay access denied) is the
// admin's to mend, and the reply waits for it.
func TestAnsweredForGood(t *testing.T) {
	for _, c := range []struct {
		code       int
		enhanced   gosmtp.EnhancedCode
		aboutReply bool
		final      bool
	}{
		{550, gosmtp.EnhancedCode{5, 1, 1}, true, true},
		{552, gosmtp.EnhancedCode{5, 3, 4}, true, true},
		{550, gosmtp.NoEnhancedCode, true, true},
		{554, gosmtp.EnhancedCode{5, 7, 1}, true, false},
		{550, gosmtp.EnhancedCode{5, 1, 0}, false, false},
		{450, gosmtp.EnhancedCode{4, 2, 0}, true, false},
	} {
		err := answered(&gosmtp.SMTPError{Code: c.code, EnhancedCode: c.enhanced, Message: "x"}, c.aboutReply)
		var r *refusal
		if !errors.As(err, &r) || r.final != c.final {
			t.Errorf("%d %v (about the reply: %v): %#v, want final %v", c.code, c.enhanced, c.aboutReply, err, c.final)
		}
	}
	if err := answered(context.DeadlineExceeded, true); err != context.DeadlineExceeded {
		t.Errorf("a failure without an answer: %v", err)
	}
}

// A report that returns no message names the reply it reports on by its
// In-Reply-To.
func TestBounceWithoutTheReturnedMessage(t *testing.T) {
	raw := "From: MAILER-DAEMON@mx.example.org\r\nIn-Reply-To: <dg-1@dirigent.test>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; joe@example.org\r\nAction: failed (bad address)\r\nStatus: 5.1.1\r\n--B--\r\n"
	p, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if p.Bounce == nil || p.Bounce.MessageID != "dg-1@dirigent.test" || p.Bounce.Reason() != "joe@example.org: status 5.1.1" || !p.Automatic {
		t.Errorf("parsed %+v, bounce %+v", p, p.Bounce)
	}
}
