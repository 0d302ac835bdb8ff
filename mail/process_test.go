package mail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"dirigent/router"
	"dirigent/store"
)

// send delivers one message over SMTP and waits until it is processed.
func (s *site) send(t *testing.T, from, headers, body string) {
	t.Helper()
	before, _ := s.st.MailCount()
	msg := "From: " + from + "\r\nTo: support@example.com\r\n" + headers + "\r\n\r\n" + body + "\r\n"
	envelope, err := netmail.ParseAddress(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := smtp.SendMail(s.ch.SMTPAddr().String(), nil, envelope.Address, []string{"support@example.com"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	waitProcessed(t, s.st, before+1)
}

// waitProcessed waits until the store holds n messages (accepted mail
// reaches it from the intake log moments after its 250) and none waits
// for processing.
func waitProcessed(t *testing.T, st *store.Store, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		got, err := st.MailCount()
		if err != nil {
			t.Fatal(err)
		}
		ids, err := st.PendingMails()
		if err != nil {
			t.Fatal(err)
		}
		if got >= n && len(ids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d mails stored, %v not processed, after 10 s", got, n, ids)
		}
	}
}

// journeyOf returns a customer's contacts by e-mail address, oldest first.
func (s *site) journeyOf(t *testing.T, addr string) []*store.Contact {
	t.Helper()
	id, err := s.st.LookupIdentity("email:" + addr)
	if err != nil {
		t.Fatal(err)
	}
	es, err := s.st.Journey(id, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []*store.Contact
	for i := len(es) - 1; i >= 0; i-- {
		out = append(out, es[i].Contact)
	}
	return out
}

func TestMailBecomesContactConversationAndTask(t *testing.T) {
	s := startSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}})
	if err := s.router.SetPresence("anna", router.Available, ""); err != nil {
		t.Fatal(err)
	}
	s.send(t, "Joe <joe@example.org>", "Subject: Rechnung falsch\r\nMessage-ID: <m1@example.org>", "Meine Rechnung stimmt nicht.")
	select {
	case o := <-s.offers:
		if o.Agent != "anna" || o.Queue != "billing" || o.Channel != router.Email {
			t.Errorf("offer %+v, want anna, billing (the intent rule), email", o)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no offer for the mail")
	}
	joe := s.journeyOf(t, "joe@example.org")
	if len(joe) != 1 || joe[0].Subject != "Rechnung falsch" || joe[0].Text != "Meine Rechnung stimmt nicht." || joe[0].Intent != "billing" || joe[0].MailID == 0 {
		t.Fatalf("Joe's journey %+v", joe)
	}
	conv, err := s.st.Conversation(joe[0].ConversationID)
	if err != nil || conv.Tag != fmt.Sprintf("DG-%d", conv.ID) {
		t.Fatalf("conversation %+v %v", conv, err)
	}

	// A reply by Message-ID, and one by ticket tag, continue it.
	s.send(t, "joe@example.org", "Subject: Re: Rechnung falsch\r\nMessage-ID: <m2@example.org>\r\nIn-Reply-To: <m1@example.org>", "Noch eine Frage.")
	s.send(t, "Joe <JOE@example.org>", "Subject: Re: [#"+conv.Tag+"] noch offen", "Hallo?")
	// Eve answers Joe's thread: not Joe's conversation.
	s.send(t, "eve@example.net", "Subject: Re: Rechnung falsch\r\nIn-Reply-To: <m1@example.org>", "Ich auch!")
	// Joe's out-of-office reply goes into his journey but makes no task.
	s.send(t, "joe@example.org", "Subject: Abwesend\r\nAuto-Submitted: auto-replied", "Bin weg.")

	joe = s.journeyOf(t, "joe@example.org")
	if len(joe) != 4 {
		t.Fatalf("Joe has %d contacts, want 4", len(joe))
	}
	for i, c := range joe[:3] {
		if c.ConversationID != conv.ID {
			t.Errorf("Joe's contact %d (%q) is in conversation %d, want %d", i, c.Subject, c.ConversationID, conv.ID)
		}
	}
	if joe[3].Outcome != "automatic" || joe[3].ConversationID == conv.ID {
		t.Errorf("auto-reply %+v", joe[3])
	}
	eve := s.journeyOf(t, "eve@example.net")
	if len(eve) != 1 || eve[0].ConversationID == conv.ID {
		t.Errorf("Eve's contact landed in Joe's conversation: %+v", eve)
	}
	st := map[string]int{}
	for _, q := range s.router.Stats() {
		st[q.Queue] = q.Today.Offered
	}
	if st["billing"] != 3 || st["support"] != 1 {
		t.Errorf("tasks offered to queues %v; want billing 3 (subjects with Rechnung), support 1 (the tagged one; none for the robot)", st)
	}

	// Processing a message again (a crash before it was marked) makes no
	// second contact.
	outcome, err := s.ch.process(context.Background(), joe[0].MailID)
	if err != nil || outcome != "already" {
		t.Errorf("second processing: %s %v", outcome, err)
	}
	if again := s.journeyOf(t, "joe@example.org"); len(again) != 4 {
		t.Errorf("Joe has %d contacts after reprocessing", len(again))
	}
}

// Messages recorded in one transaction see the ones before them: a reply
// to a message of the same batch joins its new conversation (created
// once) and is a repeat contact; someone else's reply to it does not.
func TestBatchSeesItsEarlierMessages(t *testing.T) {
	s := newSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}})
	at := time.Now().UTC()
	var ids []uint64
	for i, raw := range []string{
		"From: joe@example.org\r\nSubject: Rechnung\r\nMessage-ID: <a1@example.org>\r\n\r\nFalsch",
		"From: joe@example.org\r\nSubject: Re: Rechnung\r\nMessage-ID: <a2@example.org>\r\nIn-Reply-To: <a1@example.org>\r\n\r\nNoch da?",
		"From: eve@example.net\r\nSubject: Re: Rechnung\r\nIn-Reply-To: <a1@example.org>\r\n\r\nIch auch",
	} {
		m := &store.InboundMail{Received: at.Add(time.Duration(i) * time.Minute), Source: "smtp", From: "x@example.org", Recipients: []string{"support@example.com"}}
		if _, err := s.st.StoreMail(context.Background(), m, []byte(raw)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	// Nothing else processes them: the channel does not run.
	got := s.processBatch(t, ids...)
	if want := []string{"new", "reply", "new"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	joe, eve := s.journeyOf(t, "joe@example.org"), s.journeyOf(t, "eve@example.net")
	if len(joe) != 2 || joe[0].ConversationID != joe[1].ConversationID || len(eve) != 1 || eve[0].ConversationID == joe[0].ConversationID {
		t.Fatalf("Joe's contacts %+v, Eve's %+v: want Joe's two in one conversation, Eve's in another", joe, eve)
	}
	if conv, err := s.st.Conversation(joe[0].ConversationID + 1); err != nil || conv.CustomerID != eve[0].CustomerID {
		t.Errorf("the conversation after Joe's is %+v, %v: want Eve's (Joe's made once)", conv, err)
	}
	repeat := map[uint64]bool{}
	s.st.OpenTasks(func(id uint64, p []byte) error {
		var u router.Unfinished
		if err := json.Unmarshal(p, &u); err != nil {
			t.Fatal(err)
		}
		repeat[id] = u.Repeat
		return nil
	})
	if len(repeat) != 3 || repeat[joe[0].ID] || !repeat[joe[1].ID] || repeat[eve[0].ID] {
		t.Errorf("repeat flags of the open tasks %v: want only Joe's second (%d)", repeat, joe[1].ID)
	}
}

func TestUnreadableMailIsKeptAndSkipped(t *testing.T) {
	s := startSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}})
	msg := "To: support@example.com\r\nSubject: ohne Absender\r\n\r\nwer?\r\n"
	if err := smtp.SendMail(s.ch.SMTPAddr().String(), nil, "x@example.org", []string{"support@example.com"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	waitProcessed(t, s.st, 1)
	if _, raw, err := s.st.Mail(1); err != nil || !strings.Contains(string(raw), "ohne Absender") {
		t.Errorf("the unreadable mail is not kept: %v", err)
	}
}

func TestContactFormMailBelongsToReplyTo(t *testing.T) {
	s := startSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}})
	// The shop's contact form sends as itself, on behalf of Jana.
	s.send(t, "Kontaktformular <noreply@shop.example>", "Subject: Lieferung fehlt\r\nMessage-ID: <f1@shop.example>\r\nReply-To: Jana Kunde <jana@example.org>", "Mein Paket ist nicht da.")
	// Jana answers our reply from her own mailbox: the same conversation.
	s.send(t, "jana@example.org", "Subject: Re: Lieferung fehlt\r\nIn-Reply-To: <f1@shop.example>", "Immer noch nicht.")
	// A Reply-To naming the support address itself changes nothing.
	s.send(t, "tom@example.net", "Subject: Frage\r\nReply-To: support@example.com", "Hallo")
	// A shop's noreply confirmation copied to support is a program's, as
	// are a newsletter's and one whose answers go to noreply@.
	s.send(t, "noreply@orders.example", "Subject: Ihre Bestellung\r\nReply-To: support@example.com", "Bestellt.")
	s.send(t, "no-reply@news.example", "Subject: Neuigkeiten", "Neu!")
	s.send(t, "shop@mall.example", "Subject: Versandt\r\nReply-To: donotreply@mall.example", "Unterwegs.")

	jana := s.journeyOf(t, "jana@example.org")
	if len(jana) != 2 || jana[0].ConversationID != jana[1].ConversationID || jana[0].Outcome != "" {
		t.Fatalf("Jana's journey %+v: want the form mail (a task, though sent as noreply@) and her answer in one conversation", jana)
	}
	c, err := s.st.Customer(jana[0].CustomerID)
	if err != nil || c.Name != "Jana Kunde" {
		t.Errorf("customer %+v, %v: want Jana Kunde", c, err)
	}
	if _, err := s.st.LookupIdentity("email:noreply@shop.example"); err == nil {
		t.Error("the contact form's own address became a customer")
	}
	if tom := s.journeyOf(t, "tom@example.net"); len(tom) != 1 {
		t.Errorf("Tom has %d contacts, want 1", len(tom))
	}
	for _, robot := range []string{"noreply@orders.example", "no-reply@news.example", "donotreply@mall.example"} {
		if mail := s.journeyOf(t, robot); len(mail) != 1 || mail[0].Outcome != store.OutcomeAutomatic {
			t.Errorf("%s's mail: %+v", robot, mail)
		}
	}
}

// processBatch processes stored messages as one batch, and returns
// their outcomes.
func (s *site) processBatch(t *testing.T, ids ...uint64) []string {
	t.Helper()
	var b batch
	for _, id := range ids {
		if o, done := s.ch.prepare(context.Background(), id, &b); done {
			t.Fatalf("mail %d: %s %v", id, o.name, o.err)
		}
	}
	var got []string
	for _, o := range s.ch.record(context.Background(), &b) {
		got = append(got, o.name)
	}
	return got
}

// process processes one stored message as a batch of its own.
func (c *Channel) process(ctx context.Context, id uint64) (outcome string, err error) {
	var b batch
	if o, done := c.prepare(ctx, id, &b); done {
		return o.name, o.err
	}
	o := c.record(ctx, &b)[0]
	return o.name, o.err
}

// A daemon stop cancels the processor's context in the middle of a
// message: the message stays pending for the next start, so that is
// neither an ERROR in the log nor an "error" outcome.
func TestStopIsNoProcessingError(t *testing.T) {
	var log bytes.Buffer
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	c := &Channel{deps: Deps{Logger: slog.New(slog.NewTextHandler(&log, nil))}, metrics: m}
	c.count(outcome{mail: 7, name: "error", err: fmt.Errorf("mail 7: %w", context.Canceled)})
	if log.Len() != 0 {
		t.Errorf("a canceled context is logged:\n%s", &log)
	}
	if n := processedCount(t, m, "error"); n != 0 {
		t.Errorf("a canceled context counts as %v errors", n)
	}
	c.count(outcome{mail: 8, name: "error", err: errors.New("disk full")})
	if !strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("a real error is not logged as one:\n%s", &log)
	}
	if n := processedCount(t, m, "error"); n != 1 {
		t.Errorf("a real error counts as %v errors", n)
	}
}

// processedCount is how many messages processing counted with outcome.
func processedCount(t *testing.T, m *metrics, outcome string) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.processed.WithLabelValues(outcome).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

// A message whose customer is erased (or merged away) while it is being
// processed writes nothing in their name: it stays pending, counted as
// "gone", and is processed again for whoever its sender is now.
func TestMailOfACustomerErasedMeanwhile(t *testing.T) {
	s := newSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}})
	ctx := context.Background()
	m := &store.InboundMail{Received: time.Now().UTC(), Source: "smtp", From: "x@example.org", Recipients: []string{"support@example.com"}}
	if _, err := s.st.StoreMail(ctx, m, []byte("From: joe@example.org\r\nSubject: Kündigung\r\n\r\nBitte kündigen.")); err != nil {
		t.Fatal(err)
	}
	var b batch
	if o, done := s.ch.prepare(ctx, m.ID, &b); done {
		t.Fatalf("prepare: %s %v", o.name, o.err)
	}
	joe := b.mails[0].rec.Contact.CustomerID
	if _, err := s.st.EraseCustomer(ctx, joe, func([]byte) uint64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	if o := s.ch.record(ctx, &b)[0]; o.name != "gone" || o.err != nil {
		t.Errorf("outcome %s %v, want gone", o.name, o.err)
	}
	if pending, _ := s.st.PendingMails(); len(pending) != 1 {
		t.Fatalf("pending %v, want the mail", pending)
	}
	if outcome, err := s.ch.process(ctx, m.ID); outcome != "new" || err != nil {
		t.Fatalf("processed again: %s %v", outcome, err)
	}
	if c := s.journeyOf(t, "joe@example.org"); len(c) != 1 || c[0].CustomerID == joe {
		t.Errorf("contacts %+v: want one of a new customer", c)
	}
}
