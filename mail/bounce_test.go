package mail

import (
	"context"
	"errors"
	"fmt"
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
	return corpusBounce(t, "postfix-bounce.eml", mid)
}

// corpusBounce is a bounce of the corpus about the message with
// Message-ID mid.
func corpusBounce(t *testing.T, name, mid string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "corpus", name))
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
	out, err := s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", "", "Wir prüfen das.")
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
	s.counted(t, "bounce", 1)

	// The agent's next reply goes to Joe again, not to the mail system.
	if err := os.Remove(firstFile(t, dir)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", "", "Bitte rufen Sie uns an."); err != nil {
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
	s.counted(t, "automatic", 1)
}

// siteBehindPostfix is a site whose smarthost is a real Postfix, which
// hands the mail for example.com back to the site (testpeer.Postfix).
func siteBehindPostfix(t *testing.T) *site {
	t.Helper()
	addr := testpeer.FreeAddr(t)
	s := siteSendingTo(t, addr, "")
	testpeer.Postfix(t, addr, "example.com", s.ch.SMTPAddr().String())
	return s
}

// A reply the smarthost refuses for good (a real Postfix refusing an
// unknown recipient of a domain it keeps mailboxes for, 550 5.1.1) is
// not tried again: a delivery report comes back into the conversation as
// for a bounce from further on.
func TestReplyRefusedForGoodBounces(t *testing.T) {
	s := siteBehindPostfix(t)
	out := s.repliedTo(t, "joe@example.org")
	testrun.Eventually(t, 20*time.Second, "the refusal's report processed", func() bool {
		return len(s.journeyOf(t, "joe@example.org")) == 3
	})
	const answer = "smarthost answered 550 5.1.1: <joe@example.org>: Recipient address rejected: User unknown in virtual mailbox table"
	m, err := s.st.OutboundStatus(out.ID)
	if err != nil || m.Bounced.IsZero() || m.Attempts != 1 || m.BounceReason != answer || m.LastError != answer {
		t.Errorf("the reply's record: %+v %v", m, err)
	}
	if n, _ := s.st.OutboxDepth(); n != 0 {
		t.Errorf("the refused reply still waits in the outbox (%d)", n)
	}
	joe := s.journeyOf(t, "joe@example.org")
	if back := joe[2]; back.BounceOf != joe[1].ID || back.Outcome != "" || !strings.Contains(back.Text, "refused the reply to joe@example.org for good") || !strings.Contains(back.Text, "User unknown in virtual mailbox table") {
		t.Errorf("the refusal's contact: %+v", back)
	}
	if _, err := s.st.LookupIdentity("email:mailer-daemon@dirigent.test"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the report's sender became a customer: %v", err)
	}
}

// A reply the smarthost takes, and a receiving server further on does
// not, comes back as the real bounce Postfix writes (to a mailbox at
// bounce.example), into the reply's conversation.
func TestBounceFromPostfix(t *testing.T) {
	s := siteBehindPostfix(t)
	out := s.repliedTo(t, "joe@bounce.example")
	testrun.Eventually(t, 30*time.Second, "Postfix's bounce processed", func() bool {
		return len(s.journeyOf(t, "joe@bounce.example")) == 3
	})
	joe := s.journeyOf(t, "joe@bounce.example")
	if back := joe[2]; back.BounceOf != joe[1].ID || back.Outcome != "" || back.Queue != "billing" {
		t.Errorf("the bounce's contact: %+v", back)
	}
	if m, err := s.st.OutboundStatus(out.ID); err != nil || m.Sent.IsZero() || m.Bounced.IsZero() || m.BounceReason != `joe@bounce.example: unknown user: "joe"` {
		t.Errorf("the reply's record: %+v %v", m, err)
	}
	s.counted(t, "bounce", 1)
}

// qmail's plain-text bounce (QSBMF) of a reply comes back as a
// delivery report does: the reply shows as not delivered, with the
// receiving server's answer, and the bounce is a task in the reply's
// conversation.
func TestBounceFromQmail(t *testing.T) {
	s, dir := siteWithSink(t, "")
	out := s.repliedTo(t, "joe@example.org")
	received(t, s, dir)
	s.sendReport(t, corpusBounce(t, "qmail-bounce.eml", out.MessageID))
	m, err := s.st.OutboundStatus(out.ID)
	if err != nil || m.Bounced.IsZero() || m.BounceReason != "joe@example.org: 192.0.2.1 does not like recipient. Remote host said: 550 5.1.1 <joe@example.org>: Recipient address rejected: User unknown Giving up on 192.0.2.1." {
		t.Errorf("the reply's record: %+v %v", m, err)
	}
	joe := s.journeyOf(t, "joe@example.org")
	if len(joe) != 3 || joe[2].BounceOf != joe[1].ID || joe[2].Outcome != "" {
		t.Errorf("Joe's journey: %+v", joe)
	}
	s.counted(t, "bounce", 1)
}

// qmail's plain-text form: the recipients' paragraphs, its two kinds of
// break line, its own status in "(#5.1.1)" or the server's, not an
// address; text of that shape from other than a mail system's address
// (even automatic), or without the returned message's parts, is no
// bounce.
func TestQmailBounces(t *testing.T) {
	const intro = "Hi. This is the qmail-send program at mx.example.org.\r\nI'm afraid I wasn't able to deliver your message to the following addresses.\r\nThis is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
	const returned = "--- Enclosed are the original headers of the message.\r\n\r\nFrom: support@example.com\r\nMessage-ID: <dg-3@dirigent.test>\r\n"
	for _, tc := range []struct {
		name, from, body, to, want string
	}{
		{"its own status", "MAILER-DAEMON@mx.example.org", intro + "<joe@example.org>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n" + returned,
			"joe@example.org", "joe@example.org: Sorry, no mailbox here by that name. (#5.1.1) [5.1.1]"},
		{"the reply's recipient of two", "MAILER-DAEMON@mx.example.org", intro + "<a@example.org>:\r\nSorry.\r\n\r\n<joe@example.org>:\r\nMailbox full.\r\n\r\n" + returned,
			"joe@example.org", "joe@example.org: Mailbox full. [5.0.0]"},
		{"an address before the server's answer", "MAILER-DAEMON@mx.example.org", intro + "<joe@example.org>:\r\n10.4.5.6 does not like recipient.\r\nRemote host said: 552 5.2.2 Mailbox full\r\nGiving up on 10.4.5.6.\r\n\r\n" + returned,
			"joe@example.org", "joe@example.org: 10.4.5.6 does not like recipient. Remote host said: 552 5.2.2 Mailbox full Giving up on 10.4.5.6. [5.2.2]"},
		{"another's", "MAILER-DAEMON@mx.example.org", intro + "<a@example.org>:\r\nSorry.\r\n\r\n<b@example.org>:\r\nSorry.\r\n\r\n" + returned, "joe@example.org", ""},
		{"a person's auto-reply of that shape", "joe@example.org\r\nAuto-Submitted: auto-replied", intro + "<joe@example.org>:\r\nSorry.\r\n\r\n" + returned, "joe@example.org", ""},
		{"no break line", "MAILER-DAEMON@mx.example.org", intro + "<joe@example.org>:\r\nSorry.\r\n", "joe@example.org", ""},
		{"no recipient", "MAILER-DAEMON@mx.example.org", intro + returned, "joe@example.org", ""},
	} {
		p, err := Parse([]byte("From: " + tc.from + "\r\nSubject: failure notice\r\n\r\n" + tc.body))
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if p.Bounce != nil && p.Bounce.MessageID == "dg-3@dirigent.test" {
			if f := p.Bounce.For(tc.to); f != nil {
				got = f.Reason() + " [" + f.Status + "]"
			}
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// What a smarthost answers that is not about the reply alone is tried
// again (real smtp-sinks): a 4xx; a 5xx to the recipient or the data
// without a status that says it is about them (smtp-sink's 500 5.3.0).
func TestReplyRefusedForNowIsTriedAgain(t *testing.T) {
	for _, tc := range []struct {
		sink   []string
		answer string
	}{
		{[]string{"-r", "rcpt"}, "smarthost answered 450 4.3.0: Error: command failed"},
		{[]string{"-f", "rcpt"}, "smarthost answered 500 5.3.0: Error: command failed"},
		{[]string{"-f", "."}, "smarthost answered 500 5.3.0: Error: command failed"},
	} {
		t.Run(strings.Join(tc.sink, " "), func(t *testing.T) {
			s := siteSendingTo(t, testpeer.SMTPSink(t, "", sinkDir(t), tc.sink...), "")
			out := s.repliedTo(t, "joe@example.org")
			testrun.Eventually(t, 10*time.Second, "two attempts", func() bool {
				m, err := s.st.OutboundStatus(out.ID)
				return err == nil && m.Attempts >= 2
			})
			if m, _ := s.st.OutboundStatus(out.ID); !m.Bounced.IsZero() || m.LastError != tc.answer {
				t.Errorf("the reply: %+v, want it waiting after %q", m, tc.answer)
			}
		})
	}
}

// Only a permanent status about the reply's recipient or content refuses
// it for good; one about dirigent's sender or set-up (a 5xx to MAIL
// FROM, 5.7.x: relay access denied, an answer about the sender, a 5.2.x at
// the data's end: the sender's quota) is the admin's to mend, and one
// without a status cannot be told apart.
func TestAnsweredForGood(t *testing.T) {
	for _, c := range []struct {
		code     int
		enhanced gosmtp.EnhancedCode
		message  string
		at       stage
		final    bool
	}{
		{550, gosmtp.EnhancedCode{5, 1, 1}, "<joe@example.org>: User unknown", atRecipient, true},
		{550, gosmtp.EnhancedCode{5, 1, 10}, "null MX", atRecipient, true},
		{552, gosmtp.EnhancedCode{5, 2, 2}, "mailbox full", atRecipient, true},
		{552, gosmtp.EnhancedCode{5, 3, 4}, "too big", atContent, true},
		{554, gosmtp.EnhancedCode{5, 6, 0}, "content", atContent, true},
		{550, gosmtp.EnhancedCode{5, 1, 1}, "<joe@example.org>: User unknown", atContent, true},
		{554, gosmtp.EnhancedCode{5, 2, 0}, "SubmissionQuotaExceededException", atContent, false},
		{550, gosmtp.EnhancedCode{}, "relay not permitted", atRecipient, false}, // Exim, no status: go-smtp's zero code
		{550, gosmtp.NoEnhancedCode, "User unknown", atRecipient, false},
		{554, gosmtp.EnhancedCode{5, 7, 1}, "Relay access denied", atRecipient, false},
		{550, gosmtp.EnhancedCode{5, 1, 1}, "<Support@example.com>: Sender address rejected: User unknown", atRecipient, false},
		{550, gosmtp.EnhancedCode{5, 1, 1}, "<support@example.com> unknown", atRecipient, false},
		{550, gosmtp.EnhancedCode{5, 1, 1}, "<xsupport@example.com> unknown", atRecipient, true},
		{553, gosmtp.EnhancedCode{5, 1, 8}, "Domain not found", atRecipient, false},
		{550, gosmtp.EnhancedCode{5, 3, 0}, "Error", atRecipient, false},
		{550, gosmtp.EnhancedCode{5, 1, 1}, "x", atSender, false},
		{450, gosmtp.EnhancedCode{4, 2, 0}, "later", atRecipient, false},
	} {
		err := answered(&gosmtp.SMTPError{Code: c.code, EnhancedCode: c.enhanced, Message: c.message}, "support@example.com", c.at)
		var r *refusal
		if !errors.As(err, &r) || r.final != c.final {
			t.Errorf("%d %v %q (stage %d): %#v, want final %v", c.code, c.enhanced, c.message, c.at, err, c.final)
		}
	}
	if err := answered(context.DeadlineExceeded, "support@example.com", atRecipient); err != context.DeadlineExceeded {
		t.Errorf("a failure without an answer: %v", err)
	}
}

// A reply the smarthost does not take while nothing answers on its port
// bounces after MaxQueueTime as the site's mail server's failure, not the
// customer's address's.
func TestReplyUnsentWhileTheSmarthostIsDownBounces(t *testing.T) {
	s := startSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}, Smarthost: SmarthostConfig{
		Addr: testpeer.FreeAddr(t), TLS: "none", RetryBase: 50 * time.Millisecond, MaxQueueTime: 300 * time.Millisecond}})
	out := s.repliedTo(t, "joe@example.org")
	testrun.Eventually(t, 10*time.Second, "the report processed", func() bool {
		return len(s.journeyOf(t, "joe@example.org")) == 3
	})
	if m, err := s.st.OutboundStatus(out.ID); err != nil || !strings.HasPrefix(m.BounceReason, "not sent in 300ms: dial tcp") {
		t.Errorf("the reply's record: %+v %v", m, err)
	}
	joe := s.journeyOf(t, "joe@example.org")
	if back := joe[2]; back.BounceOf != joe[1].ID || !strings.Contains(back.Text, "the site's mail server 127.0.0.1 could not be reached") {
		t.Errorf("the report's contact: %+v", back)
	}
	_, raw, err := s.st.Mail(joe[2].MailID)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(raw)
	if err != nil || p.Bounce == nil || p.Bounce.Recipients[0].Status != "4.4.1" || !strings.Contains(p.Bounce.Recipients[0].Diagnostic, "connection refused") {
		t.Errorf("the report: %+v %v", p, err)
	}
}

// A reply the smarthost keeps refusing for now (a real smtp-sink, 450)
// bounces once it has been tried for MaxQueueTime, with the last answer,
// as an MTA gives up after its queue lifetime.
func TestReplyTriedTooLongBounces(t *testing.T) {
	s := startSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}, Smarthost: SmarthostConfig{
		Addr: testpeer.SMTPSink(t, "", sinkDir(t), "-r", "rcpt"), TLS: "none", RetryBase: 50 * time.Millisecond, MaxQueueTime: 300 * time.Millisecond}})
	out := s.repliedTo(t, "joe@example.org")
	testrun.Eventually(t, 10*time.Second, "the report processed", func() bool {
		return len(s.journeyOf(t, "joe@example.org")) == 3
	})
	m, err := s.st.OutboundStatus(out.ID)
	if err != nil || m.Bounced.IsZero() || m.BounceReason != "not sent in 300ms: smarthost answered 450 4.3.0: Error: command failed" || m.Attempts < 2 {
		t.Errorf("the reply's record: %+v %v", m, err)
	}
	joe := s.journeyOf(t, "joe@example.org")
	if back := joe[2]; back.BounceOf != joe[1].ID || back.Outcome != "" || !strings.Contains(back.Text, "could not be sent in 300ms") {
		t.Errorf("the report's contact: %+v", back)
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
	if p.Bounce == nil || p.Bounce.MessageID != "dg-1@dirigent.test" || p.Bounce.For("joe@example.org").Reason() != "joe@example.org: status 5.1.1" || !p.Automatic {
		t.Errorf("parsed %+v, bounce %+v", p, p.Bounce)
	}
}

// An international report (RFC 6533) is a bounce too; a report names the
// failure for the reply's recipient, or its only one, and its Action may
// carry a comment.
func TestBounceReports(t *testing.T) {
	report := func(reportType, statusType, recipients string) string {
		return "From: MAILER-DAEMON@mx.example.org\r\nContent-Type: multipart/report; report-type=" + reportType + "; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n--B\r\nContent-Type: " + statusType + "\r\n\r\nReporting-MTA: dns; mx\r\n" + recipients + "--B\r\nContent-Type: message/global-headers\r\n\r\nMessage-ID: <dg-2@dirigent.test>\r\n--B--\r\n"
	}
	block := func(to, action string) string {
		return "\r\nFinal-Recipient: rfc822; " + to + "\r\nAction: " + action + "\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 " + to + " unknown\r\n"
	}
	for _, tc := range []struct {
		name, raw, to, want string
	}{
		{"global", report("global-delivery-status", "message/global-delivery-status", block("jörg@example.org", "failed")), "jörg@example.org", "jörg@example.org: 550 jörg@example.org unknown"},
		{"the reply's recipient of two", report("delivery-status", "message/delivery-status", block("a@example.org", "failed")+block("joe@example.org", "failed")), "joe@example.org", "joe@example.org: 550 joe@example.org unknown"},
		{"the only one, forwarded", report("delivery-status", "message/delivery-status", block("joe@elsewhere.example", "failed(forwarded)")), "joe@example.org", "joe@elsewhere.example: 550 joe@elsewhere.example unknown"},
		{"named as sent", report("delivery-status", "message/delivery-status", block("a@example.org", "failed")+strings.Replace(block("joe@elsewhere.example", "failed"), "Action:", "Original-Recipient: rfc822; joe@example.org\r\nAction:", 1)), "joe@example.org", "joe@elsewhere.example: 550 joe@elsewhere.example unknown"},
		{"the only one, as sent to another", report("delivery-status", "message/delivery-status", strings.Replace(block("jane@elsewhere.example", "failed"), "Action:", "Original-Recipient: rfc822; jane@example.org\r\nAction:", 1)), "joe@example.org", ""},
		{"another's of two", report("delivery-status", "message/delivery-status", block("a@example.org", "failed")+block("b@example.org", "failed")), "joe@example.org", ""},
		{"no Action, a permanent Status; an address in brackets, blank lines between", report("delivery-status", "message/delivery-status", "\r\n\r\n"+strings.Replace(strings.Replace(block("joe@example.org", "x"), "Action: x\r\n", "", 1), "rfc822; joe@example.org", "rfc822; <joe@example.org>", 1)), "joe@example.org", "joe@example.org: 550 joe@example.org unknown"},
		{"delivered to joe, not to jane", report("delivery-status", "message/delivery-status", block("joe@example.org", "delivered")+block("jane@example.org", "failed")), "joe@example.org", ""},
		{"delivered", report("delivery-status", "message/delivery-status", block("joe@example.org", "delivered")), "joe@example.org", ""},
	} {
		p, err := Parse([]byte(tc.raw))
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if p.Bounce != nil && p.Bounce.MessageID == "dg-2@dirigent.test" {
			if f := p.Bounce.For(tc.to); f != nil {
				got = f.Reason()
			}
		}
		if got != tc.want || !p.Automatic {
			t.Errorf("%s: %q (automatic %v), want %q", tc.name, got, p.Automatic, tc.want)
		}
	}
}

// A second report about the same reply shows, but makes no second task;
// a report about the customer's own mail in the conversation is no bounce
// of a reply.
func TestBounceOnce(t *testing.T) {
	s, dir := siteWithSink(t, "")
	out := s.repliedTo(t, "joe@example.org")
	received(t, s, dir)
	s.sendReport(t, postfixBounce(t, out.MessageID))
	s.sendReport(t, postfixBounce(t, out.MessageID))
	s.sendReport(t, postfixBounce(t, "first-joe@example.org"))
	joe := s.journeyOf(t, "joe@example.org")
	if len(joe) != 4 || joe[2].BounceOf != joe[1].ID || joe[2].Outcome != "" || joe[3].BounceOf != joe[1].ID || joe[3].Outcome != "automatic" {
		t.Fatalf("Joe's journey: %+v", joe)
	}
	offered := 0
	for _, q := range s.router.Stats() {
		offered += q.Today.Offered
	}
	if offered != 2 {
		t.Errorf("%d tasks, want 2: Joe's mail and the first bounce", offered)
	}
	if robot := s.journeyOf(t, "mailer-daemon@mx.example.org"); len(robot) != 1 || robot[0].BounceOf != 0 {
		t.Errorf("the report about Joe's own mail: %+v", robot)
	}
}

// A bounce finds its reply however much of the customer's journey came
// since: MTAs retry for days, and a shop posts touchpoints meanwhile.
func TestLateBounce(t *testing.T) {
	s, dir := siteWithSink(t, "")
	out := s.repliedTo(t, "joe@example.org")
	received(t, s, dir)
	joe := s.journeyOf(t, "joe@example.org")
	for i := range 300 {
		if err := s.st.AddTouchpoint(context.Background(), &store.Touchpoint{CustomerID: joe[0].CustomerID, Type: "web_visit", At: time.Now().Add(time.Duration(i) * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	s.sendReport(t, postfixBounce(t, out.MessageID))
	if m, err := s.st.OutboundStatus(out.ID); err != nil || m.Bounced.IsZero() {
		t.Errorf("the reply after a late bounce: %+v %v", m, err)
	}
}

// Two reports about one reply in the same batch make one task.
func TestBounceTwiceInABatch(t *testing.T) {
	s := newSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}})
	store1 := func(raw []byte) uint64 {
		t.Helper()
		m := &store.InboundMail{Received: time.Now().UTC(), Source: "smtp", Recipients: []string{"support@example.com"}}
		if _, err := s.st.StoreMail(context.Background(), m, raw); err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	if o, err := s.ch.process(context.Background(), store1([]byte("From: joe@example.org\r\nSubject: Rechnung\r\n\r\nFalsch"))); err != nil || o != "new" {
		t.Fatalf("Joe's mail: %s %v", o, err)
	}
	joe := s.journeyOf(t, "joe@example.org")
	out, err := s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", "", "Wir prüfen das.")
	if err != nil {
		t.Fatal(err)
	}
	got := s.processBatch(t, store1(postfixBounce(t, out.MessageID)), store1(postfixBounce(t, out.MessageID)))
	open := 0
	s.st.OpenTasks(func(uint64, []byte) error { open++; return nil })
	if fmt.Sprint(got) != "[bounce bounce]" || open != 2 {
		t.Errorf("outcomes %v, %d open tasks; want two bounces, and tasks for Joe's mail and the first", got, open)
	}
}

// counted waits until processing has counted n messages with outcome:
// it counts each once its batch is recorded, moments after the message
// left the pending ones.
func (s *site) counted(t *testing.T, outcome string, n float64) {
	t.Helper()
	testrun.Eventually(t, 10*time.Second, fmt.Sprintf("%v messages counted %s", n, outcome), func() bool {
		return processedCount(t, s.ch.metrics, outcome) == n
	})
}
