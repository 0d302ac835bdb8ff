package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"dirigent/internal/testpeer"
	"dirigent/internal/testrun"
	"dirigent/journey"
	"dirigent/store"
)

// sinkDir makes a directory smtp-sink can write to after dropping root
// (t.TempDir's parent is private to root).
func sinkDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dirigent-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// siteWithSink is a site whose replies go to a real receiving server
// (smtp-sink, writing each message into dir), with autoAck's text as
// mail.auto_ack.
func siteWithSink(t *testing.T, autoAck string) (*site, string) {
	t.Helper()
	dir := sinkDir(t)
	return siteSendingTo(t, testpeer.SMTPSink(t, "", dir), autoAck), dir
}

// siteSendingTo is a site whose replies go to the smarthost at addr,
// tried again 50 ms after a failure at first, with autoAck's text as
// mail.auto_ack.
func siteSendingTo(t *testing.T, addr, autoAck string) *site {
	t.Helper()
	return startSite(t, Config{
		SMTP:      SMTPConfig{Addresses: []string{"support@example.com"}},
		Smarthost: SmarthostConfig{Addr: addr, TLS: "none", RetryBase: 50 * time.Millisecond},
		AutoAck:   autoAck,
	})
}

// repliedTo: the customer at from writes (Message-ID <first-from>), and
// anna answers.
func (s *site) repliedTo(t *testing.T, from string) *store.OutboundMail {
	t.Helper()
	s.send(t, from, "Subject: Rechnung\r\nMessage-ID: <first-"+from+">", "Bitte melden.")
	out, err := s.ch.Reply(context.Background(), s.journeyOf(t, from)[0].ConversationID, "anna", "", "Wir melden uns.")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// received waits for the sink's one message and parses it. smtp-sink
// writes its file as the message comes in, so it is read only once the
// outbox has it sent: the sink has answered its end.
func received(t *testing.T, s *site, dir string) *gomail.Reader {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(receivedRaw(t, s, dir)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// receivedRaw is received's message as it arrived.
func receivedRaw(t *testing.T, s *site, dir string) []byte {
	t.Helper()
	var files []string
	testrun.Eventually(t, 20*time.Second, "one message sent and arrived", func() bool {
		files, _ = filepath.Glob(filepath.Join(dir, "*"))
		unsent, err := s.st.OutboxDepth()
		if err != nil {
			t.Fatal(err)
		}
		return unsent == 0 && len(files) == 1
	})
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A reply's files arrive with it, as they were, and its contact lists
// them.
func TestReplyWithFiles(t *testing.T) {
	s, dir := siteWithSink(t, "")
	s.send(t, "joe@example.org", "Subject: Rechnung", "Bitte die Rechnung noch einmal.")
	joe := s.journeyOf(t, "joe@example.org")
	pdf := []byte("%PDF-1.4\n" + strings.Repeat("\x00\xff Posten\n", 5000))
	files := []store.File{{Name: "Rechnung März.pdf", Type: "application/pdf", Data: pdf}, {Name: "liste.csv", Type: "text/csv", Data: []byte("M\xfcller;1\r\n")}}
	if _, err := s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", "", "Anbei die Rechnung.", files...); err != nil {
		t.Fatal(err)
	}
	raw := receivedRaw(t, s, dir)
	p, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Attachment{{Name: "Rechnung März.pdf", Type: "application/pdf", Size: int64(len(pdf))}, {Name: "liste.csv", Type: "text/csv", Size: 10}}
	if p.Text != "Anbei die Rechnung." || !slices.Equal(p.Attachments, want) {
		t.Fatalf("arrived %q with %+v, want %+v", p.Text, p.Attachments, want)
	}
	for i, f := range files {
		if _, data, err := attachment(raw, i); err != nil || !bytes.Equal(data, f.Data) {
			t.Errorf("file %d arrived as %d bytes, %v", i, len(data), err)
		}
	}
	joe = s.journeyOf(t, "joe@example.org")
	if len(joe) != 2 || !slices.Equal(joe[1].Attachments, want) {
		t.Errorf("the reply's contact: %+v", joe[len(joe)-1])
	}
}

func TestReplyArrivesThreaded(t *testing.T) {
	s, dir := siteWithSink(t, "")
	s.send(t, "Joe <joe@example.org>", "Subject: Rechnung falsch\r\nMessage-ID: <m1@example.org>", "Meine Rechnung stimmt nicht.")
	joe := s.journeyOf(t, "joe@example.org")
	out, err := s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", "", "Guten Tag Joe,\nwir prüfen das.")
	if err != nil {
		t.Fatal(err)
	}

	r := received(t, s, dir)
	h := r.Header
	subject, _ := h.Subject()
	to, _ := h.AddressList("To")
	inReplyTo, _ := h.MsgIDList("In-Reply-To")
	if subject != "Re: Rechnung falsch [#DG-1]" || len(to) != 1 || to[0].Address != "joe@example.org" || len(inReplyTo) != 1 || inReplyTo[0] != "m1@example.org" || h.Get("Auto-Submitted") != "" {
		t.Errorf("arrived: subject %q, to %v, in-reply-to %v", subject, to, inReplyTo)
	}
	part, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(part.Body)
	if !strings.Contains(body.String(), "wir prüfen das.") {
		t.Errorf("body %q", body.String())
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		m, err := s.st.OutboundMessage(out.ID)
		if err == nil && !m.Sent.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not marked sent: %+v %v", m, err)
		}
	}
	joe = s.journeyOf(t, "joe@example.org")
	if len(joe) != 2 || joe[1].Direction != "out" || joe[1].Agent != "anna" {
		t.Errorf("Joe's journey after the reply: %+v", joe)
	}
	// Joe answers the reply: it threads back by our Message-ID.
	s.send(t, "joe@example.org", "Subject: Re: Re: Rechnung\r\nIn-Reply-To: <"+out.MessageID+">", "Danke!")
	joe = s.journeyOf(t, "joe@example.org")
	if len(joe) != 3 || joe[2].ConversationID != joe[0].ConversationID {
		t.Errorf("Joe's answer to the reply is in conversation %d, want %d", joe[len(joe)-1].ConversationID, joe[0].ConversationID)
	}
}

func TestOutboxRetriesUntilTheSmarthostAnswers(t *testing.T) {
	dir := sinkDir(t)
	addr := testpeer.FreeAddr(t) // nobody listens yet
	s := siteSendingTo(t, addr, "")
	out := s.repliedTo(t, "joe@example.org")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		m, _ := s.st.OutboundMessage(out.ID)
		if m != nil && m.Attempts >= 1 && m.LastError != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no failed attempt recorded")
		}
	}
	if n, _ := s.st.OutboxDepth(); n != 1 {
		t.Errorf("outbox depth %d while the smarthost is down", n)
	}
	testpeer.SMTPSink(t, addr, dir)
	received(t, s, dir) // and the outbox emptied
}

func TestAutoAckOncePerSenderAndNeverToRobots(t *testing.T) {
	s, dir := siteWithSink(t, "Danke! Ihre Nummer: {tag}")
	s.send(t, "joe@example.org", "Subject: Hilfe", "Bitte melden.")
	s.send(t, "joe@example.org", "Subject: Noch was", "Und noch etwas.")                          // within the hour: no second ack
	s.send(t, "robot@example.net", "Subject: Out of office\r\nAuto-Submitted: auto-replied", "x") // never acked
	r := received(t, s, dir)
	subject, _ := r.Header.Subject()
	to, _ := r.Header.AddressList("To")
	part, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(part.Body)
	if subject != "Re: Hilfe [#DG-1]" || to[0].Address != "joe@example.org" || !strings.Contains(body.String(), "Ihre Nummer: [#DG-1]") || r.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("acknowledgement: %q to %v: %q", subject, to, body.String())
	}
	// Acknowledgements are queued while the mail is processed, which
	// send waited for: count them in the journeys.
	outgoing := func(addr string) int {
		n := 0
		for _, c := range s.journeyOf(t, addr) {
			if c.Direction == "out" {
				n++
			}
		}
		return n
	}
	if joe, robot := outgoing("joe@example.org"), outgoing("robot@example.net"); joe != 1 || robot != 0 {
		t.Errorf("acknowledgements: joe %d, robot %d; want 1 and 0", joe, robot)
	}
}

// A reply goes to whom the customer's mail says answers go to, not to a
// Reply-To naming the site itself.
func TestReplyToTheCustomerNotTheSite(t *testing.T) {
	s, dir := siteWithSink(t, "")
	s.send(t, "tom@example.net", "Subject: Frage\r\nReply-To: support@example.com", "Hallo")
	if _, err := s.ch.Reply(context.Background(), s.journeyOf(t, "tom@example.net")[0].ConversationID, "anna", "", "Guten Tag."); err != nil {
		t.Fatal(err)
	}
	if to, _ := received(t, s, dir).Header.AddressList("To"); len(to) != 1 || to[0].Address != "tom@example.net" {
		t.Errorf("the reply went to %v", to)
	}
}

// An agent may send a reply to another address than the customer's mail
// names (one the customer gave by phone after a bounce): it becomes the
// customer's when their answer from it threads back, not before, so that
// a typing error files no stranger's mail under the customer. Another
// customer's address, or none, is refused, and nothing is queued.
func TestReplyToAnotherAddress(t *testing.T) {
	s, dir := siteWithSink(t, "")
	s.send(t, "eve@example.net", "Subject: Hallo", "Hallo")
	s.send(t, "joe@example.org", "Subject: Rechnung", "Bitte die Rechnung.")
	joe := s.journeyOf(t, "joe@example.org")
	for _, tc := range []struct {
		to   string
		want error
	}{
		{"eve@example.net", store.ErrConflict},
		{"kein Name", journey.ErrBadIdentity},
		{"Support@Example.com", journey.ErrBadIdentity},
		{"noreply@example.org", journey.ErrBadIdentity},
		{"MAILER-DAEMON@example.org", journey.ErrBadIdentity},
	} {
		if _, err := s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", tc.to, "Anbei."); !errors.Is(err, tc.want) {
			t.Errorf("a reply to %q: %v, want %v", tc.to, err, tc.want)
		}
	}
	if n, _ := s.st.OutboxDepth(); n != 0 {
		t.Fatalf("%d replies queued for refused addresses", n)
	}
	out, err := s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", " Joe.Neu+Shop@Example.ORG ", "Anbei.")
	if err != nil {
		t.Fatal(err)
	}
	// It goes as typed; the identity is the address normalised.
	if to, _ := received(t, s, dir).Header.AddressList("To"); len(to) != 1 || to[0].Address != "Joe.Neu+Shop@Example.ORG" || out.To != "Joe.Neu+Shop@Example.ORG" {
		t.Errorf("the reply went to %v (%s)", to, out.To)
	}
	if id, err := s.st.LookupIdentity("email:joe.neu@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the address is customer %d's before any answer from it, %v", id, err)
	}
	// The next replies go there too, until Joe writes again.
	var next *store.OutboundMail
	for range 2 {
		os.Remove(firstFile(t, dir))
		if next, err = s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", "", "Noch etwas."); err != nil {
			t.Fatal(err)
		}
		if to, _ := received(t, s, dir).Header.AddressList("To"); len(to) != 1 || to[0].Address != "Joe.Neu+Shop@Example.ORG" {
			t.Errorf("the next reply went to %v", to)
		}
	}
	os.Remove(firstFile(t, dir))
	// A typing error: the stranger at the address is not taken for Joe
	// when their responder answers the reply (which is the conversation's,
	// and makes no customer), nor when they write naming the ticket; nor
	// is someone answering a copy of a reply sent to another address.
	typo, err := s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", "jeo@example.org", "Anbei.")
	if err != nil {
		t.Fatal(err)
	}
	received(t, s, dir)
	conv, err := s.st.Conversation(joe[0].ConversationID)
	if err != nil {
		t.Fatal(err)
	}
	s.send(t, "jeo@example.org", "Subject: Abwesend\r\nAuto-Submitted: auto-replied\r\nIn-Reply-To: <"+typo.MessageID+">", "Bin im Urlaub.")
	if _, err := s.st.LookupIdentity("email:jeo@example.org"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the responder made the address someone's: %v", err)
	}
	if joe = s.journeyOf(t, "joe@example.org"); len(joe) != 6 || joe[5].ConversationID != joe[0].ConversationID || joe[5].Outcome != store.OutcomeAutomatic {
		t.Errorf("the responder's answer in Joe's journey: %+v", joe)
	}
	s.send(t, "jeo@example.org", "Subject: Re: Rechnung [#"+conv.Tag+"]", "Wer sind Sie?")
	s.send(t, "fremd@example.net", "Subject: Fwd: Re: Rechnung\r\nIn-Reply-To: <"+out.MessageID+">", "Weitergeleitet bekommen.")
	for _, addr := range []string{"jeo@example.org", "fremd@example.net"} {
		if id, err := s.st.LookupIdentity("email:" + addr); err != nil || id == joe[0].CustomerID {
			t.Errorf("%s is customer %d (%v), Joe is %d", addr, id, err, joe[0].CustomerID)
		}
	}
	// Joe's answer from his new address, to the latest reply there,
	// proves it his.
	s.send(t, "joe.neu@example.org", "Subject: Re: Rechnung\r\nIn-Reply-To: <"+next.MessageID+">", "Danke!")
	if joe = s.journeyOf(t, "joe@example.org"); len(joe) != 7 || joe[6].ConversationID != joe[0].ConversationID || joe[6].Direction != "in" {
		t.Errorf("Joe's answer from his new address: %+v", joe)
	}
	if id, err := s.st.LookupIdentity("email:joe.neu@example.org"); err != nil || id != joe[0].CustomerID {
		t.Errorf("the new address is customer %d's, %v; want Joe's (%d)", id, err, joe[0].CustomerID)
	}
}

// Acknowledgements are counted per recipient: two customers writing
// through the same shop's contact form (noreply@, their address in
// Reply-To) are both acknowledged.
func TestAutoAckPerRecipient(t *testing.T) {
	s, dir := siteWithSink(t, "Danke! Ihre Nummer: {tag}")
	s.send(t, "noreply@shop.example", "Subject: Lieferung\r\nReply-To: jana@example.org", "Wo ist mein Paket?")
	s.send(t, "noreply@shop.example", "Subject: Rechnung\r\nReply-To: tom@example.net", "Rechnung fehlt.")
	testrun.Eventually(t, 20*time.Second, "two acknowledgements sent", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		n, _ := s.st.OutboxDepth()
		return len(files) == 2 && n == 0
	})
}

// A reply stopped before it went keeps its text in the thread, but its
// files are gone: asking for one is "not found", not a broken message.
func TestFilesOfAStoppedReplyAreGone(t *testing.T) {
	s := siteSendingTo(t, testpeer.SMTPSink(t, "", sinkDir(t), "-r", "rcpt"), "")
	s.send(t, "joe@example.org", "Subject: Rechnung", "Bitte.")
	out, err := s.ch.Reply(context.Background(), s.journeyOf(t, "joe@example.org")[0].ConversationID, "anna", "", "Anbei.", store.File{Name: "a.pdf", Type: "application/pdf", Data: []byte("%PDF")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.st.GiveUpOutbound(context.Background(), out.ID, time.Now(), "anna"); err != nil {
		t.Fatal(err)
	}
	reply, err := s.st.Contact(out.ContactID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.ch.WriteAttachment(reply, 0, func(store.Attachment) (io.Writer, error) { return io.Discard, nil })
	if !errors.Is(err, store.ErrNotFound) || reply.Text != "Anbei." {
		t.Errorf("a stopped reply's file: %v; its text %q", err, reply.Text)
	}
}

// An answer from a given address proves it the customer's for the rest of
// its batch too: a second mail from it, answering nothing, is the
// customer's, not a new customer's that the proof would then conflict
// with.
func TestGivenAddressProvenInABatch(t *testing.T) {
	s, stored, joe, out := repliedToGivenInBatches(t)
	got := s.processBatch(t,
		stored("From: joe.neu@example.org\r\nSubject: Re: Rechnung\r\nIn-Reply-To: <"+out.MessageID+">\r\n\r\nDanke"),
		stored("From: joe.neu@example.org\r\nSubject: Noch etwas\r\n\r\nUnd die Lieferung?"))
	joe = s.journeyOf(t, "joe@example.org")
	if fmt.Sprint(got) != "[reply new]" || len(joe) != 4 || joe[2].ConversationID != joe[0].ConversationID || joe[3].ConversationID == joe[0].ConversationID {
		t.Errorf("outcomes %v, Joe's journey %+v; want the answer in the conversation and the other mail a new one", got, joe)
	}
}

// repliedToGivenInBatches is a site whose channel does not run (the test
// processes mail, in batches), Joe's mail, and an agent's reply to him at
// joe.neu@example.org, an address he gave; stored stores a raw mail.
func repliedToGivenInBatches(t *testing.T) (s *site, stored func(raw string) uint64, joe []*store.Contact, out *store.OutboundMail) {
	t.Helper()
	s = newSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}})
	stored = func(raw string) uint64 {
		t.Helper()
		m := &store.InboundMail{Received: time.Now().UTC(), Source: "smtp", Recipients: []string{"support@example.com"}}
		if _, err := s.st.StoreMail(context.Background(), m, []byte(raw)); err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	if o, err := s.ch.process(context.Background(), stored("From: joe@example.org\r\nSubject: Rechnung\r\n\r\nFalsch")); err != nil || o != "new" {
		t.Fatalf("Joe's mail: %s %v", o, err)
	}
	joe = s.journeyOf(t, "joe@example.org")
	out, err := s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", "joe.neu@example.org", "Wir prüfen das.")
	if err != nil {
		t.Fatal(err)
	}
	return s, stored, joe, out
}

// Who has a given address first keeps it: a fresh mail from it that
// comes before the customer's answer (here in the same batch) makes it a
// new customer's, the answer then goes to that customer too, and later
// replies to the customer go to their own address again.
func TestGivenAddressSomeoneHasFirst(t *testing.T) {
	s, stored, joe, out := repliedToGivenInBatches(t)
	got := s.processBatch(t,
		stored("From: joe.neu@example.org\r\nSubject: Frage\r\n\r\nWer bin ich?"),
		stored("From: joe.neu@example.org\r\nSubject: Re: Rechnung\r\nIn-Reply-To: <"+out.MessageID+">\r\n\r\nDanke"))
	neu := s.journeyOf(t, "joe.neu@example.org")
	if joe = s.journeyOf(t, "joe@example.org"); fmt.Sprint(got) != "[new new]" || len(joe) != 2 || len(neu) != 2 || neu[0].CustomerID == joe[0].CustomerID {
		t.Errorf("outcomes %v; Joe's journey %+v, the address's %+v", got, joe, neu)
	}
	next, err := s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", "", "Noch etwas.")
	if err != nil || next.To != "joe@example.org" {
		t.Errorf("the next reply goes to %v (%v), want Joe's own address", next, err)
	}
}

// An outbox record that cannot be read is an ERROR once while it lasts,
// not at every pass of the sender; another, and its end, are told.
func TestOutboxReadErrorLoggedOnce(t *testing.T) {
	var log bytes.Buffer
	c := &Channel{deps: Deps{Logger: slog.New(slog.NewTextHandler(&log, nil))}}
	bad := errors.New("outbox 3: invalid character")
	for _, err := range []error{bad, bad, bad, errors.New("outbox 4: unexpected end"), nil, nil, bad} {
		c.outboxRead(err)
	}
	if got := strings.Count(log.String(), "level=ERROR"); got != 3 {
		t.Errorf("%d errors logged, want 3 (the first, another, the first again):\n%s", got, &log)
	}
	if got := strings.Count(log.String(), "readable again"); got != 1 {
		t.Errorf("the end told %d times:\n%s", got, &log)
	}
}

// A stranger at a mistyped address who answers the reply is taken for the
// customer; once the address is taken from the customer (customer
// unlink), replies no longer go there, and the stranger's next answer to
// that reply is their own.
func TestUnlinkedAddressIsNoLongerAnswered(t *testing.T) {
	s, dir := siteWithSink(t, "")
	s.send(t, "joe@example.org", "Subject: Rechnung", "Bitte die Rechnung.")
	joe := s.journeyOf(t, "joe@example.org")
	typo, err := s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", "jeo@example.org", "Anbei.")
	if err != nil {
		t.Fatal(err)
	}
	received(t, s, dir)
	os.Remove(firstFile(t, dir))
	s.send(t, "jeo@example.org", "Subject: Re: Rechnung\r\nIn-Reply-To: <"+typo.MessageID+">", "Ich bin nicht Joe.")
	if id, _ := s.st.LookupIdentity("email:jeo@example.org"); id != joe[0].CustomerID {
		t.Fatalf("the stranger's answer: the address is customer %d's", id)
	}
	if err := s.st.UnlinkIdentity(context.Background(), store.IdentityChange{Identity: "email:jeo@example.org", CustomerID: joe[0].CustomerID}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ch.Reply(context.Background(), joe[0].ConversationID, "anna", "", "Entschuldigung, Joe."); err != nil {
		t.Fatal(err)
	}
	if to, _ := received(t, s, dir).Header.AddressList("To"); len(to) != 1 || to[0].Address != "joe@example.org" {
		t.Errorf("the next reply went to %v, want Joe's own address", to)
	}
	s.send(t, "jeo@example.org", "Subject: Re: Rechnung\r\nReferences: <"+typo.MessageID+">", "Noch einmal: nicht Joe.")
	if id, err := s.st.LookupIdentity("email:jeo@example.org"); err != nil || id == joe[0].CustomerID {
		t.Errorf("after the unlink the stranger is customer %d (%v), Joe is %d", id, err, joe[0].CustomerID)
	}
}
