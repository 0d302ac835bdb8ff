package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RecordInboundMails records a batch in one transaction: two messages
// sharing a new conversation create it once, a message whose
// conversation is gone fails alone, and the transaction function may run
// again (another write of its group failed) with the same result.
func TestRecordInboundMails(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 7)
	var mails []uint64
	for i := range 3 {
		m := &InboundMail{Received: time.Now().UTC(), Source: "smtp", From: "joe@example.org"}
		if _, err := s.StoreMail(ctx, m, []byte(fmt.Sprintf("Subject: %d\r\n\r\nx", i))); err != nil {
			t.Fatal(err)
		}
		mails = append(mails, m.ID)
	}
	conv := &Conversation{CustomerID: 7, Channel: "email", Status: "open"}
	recs := []InboundRecord{
		{MailID: mails[0], Contact: &Contact{CustomerID: 7, Channel: "email"}, Conversation: conv, MessageIDs: []string{"<a1@x>"}},
		{MailID: mails[1], Contact: &Contact{CustomerID: 7, Channel: "email"}, Conversation: conv, MessageIDs: []string{"<a2@x>"}},
		{MailID: mails[2], Contact: &Contact{CustomerID: 7, Channel: "email"}, Conversation: &Conversation{ID: 99, CustomerID: 7}},
	}

	// Hold the committer, queue the batch and then a failing write behind
	// it: they share a transaction, which fails and runs the batch again.
	release := make(chan struct{})
	held := make(chan struct{})
	go s.update(ctx, func(*bolt.Tx) error { close(held); <-release; return nil })
	<-held
	type result struct {
		out []RecordedMail
		err error
	}
	done := make(chan result)
	go func() {
		out, err := s.RecordInboundMails(ctx, recs)
		done <- result{out, err}
	}()
	time.Sleep(20 * time.Millisecond)
	failed := make(chan error)
	go func() { failed <- s.update(ctx, func(*bolt.Tx) error { return errors.New("boom") }) }()
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := <-failed; err == nil {
		t.Fatal("the failing write succeeded")
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.out[0].Err != nil || r.out[1].Err != nil || !errors.Is(r.out[2].Err, ErrNotFound) || r.out[0].ContactID == r.out[1].ContactID {
		t.Fatalf("results %+v", r.out)
	}
	for i, rec := range recs[:2] {
		c, err := s.Contact(r.out[i].ContactID)
		if err != nil || c.ConversationID != conv.ID || c.MailID != rec.MailID {
			t.Errorf("contact %d: %+v, %v; want conversation %d", i, c, err, conv.ID)
		}
	}
	if got, err := s.Conversation(conv.ID); err != nil || got.Tag != fmt.Sprintf("DG-%d", conv.ID) {
		t.Errorf("conversation %+v, %v", got, err)
	}
	if got, err := s.ConversationByMessageID("<a2@x>"); err != nil || got.ID != conv.ID {
		t.Errorf("thread index: %+v, %v", got, err)
	}
	if pending, _ := s.PendingMails(); len(pending) != 1 || pending[0] != mails[2] {
		t.Errorf("pending %v, want only the message whose conversation is gone", pending)
	}
	// Recorded again (a crash before processing was acknowledged): the same
	// contact, nothing new.
	again, err := s.RecordInboundMails(ctx, recs[:1])
	if err != nil || !again[0].Existed || again[0].ContactID != r.out[0].ContactID {
		t.Errorf("again: %+v, %v", again, err)
	}
}

// A record's Identity becomes its customer's in the transaction; one
// another customer has by then, or a conversation gone, leaves the
// message waiting, with nothing of it written.
func TestRecordInboundMailLinksIdentity(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 2)
	var mails []uint64
	for range 3 {
		m := &InboundMail{Received: time.Now().UTC(), Source: "smtp", From: "joe.neu@example.org"}
		if _, err := s.StoreMail(ctx, m, []byte("Subject: Re\r\n\r\nx")); err != nil {
			t.Fatal(err)
		}
		mails = append(mails, m.ID)
	}
	record := func(mail, customer uint64) RecordedMail {
		t.Helper()
		out, err := s.RecordInboundMails(ctx, []InboundRecord{{
			MailID: mail, Identity: "email:joe.neu@example.org",
			Contact:      &Contact{CustomerID: customer, Channel: "email", Direction: "in"},
			Conversation: &Conversation{CustomerID: customer, Channel: "email", Status: "open"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	if r := record(mails[0], 1); r.Err != nil {
		t.Fatal(r.Err)
	}
	if owner, err := s.LookupIdentity("email:joe.neu@example.org"); err != nil || owner != 1 {
		t.Fatalf("the identity is customer %d's, %v; want 1's", owner, err)
	}
	if r := record(mails[1], 1); r.Err != nil {
		t.Errorf("the customer's own identity again: %v", r.Err)
	}
	if r := record(mails[2], 2); !errors.Is(r.Err, ErrConflict) {
		t.Errorf("another customer's identity: %+v", r)
	}
	if pending, _ := s.PendingMails(); len(pending) != 1 || pending[0] != mails[2] {
		t.Errorf("pending %v, want the conflicting message", pending)
	}
	if j, _ := s.Journey(2, time.Now().Add(time.Hour), 10); len(j) != 0 {
		t.Errorf("customer 2's journey: %+v", j)
	}
	// A message whose conversation is gone links nothing either.
	m := &InboundMail{Received: time.Now().UTC(), Source: "smtp", From: "jana@example.org"}
	if _, err := s.StoreMail(ctx, m, []byte("Subject: Re\r\n\r\nx")); err != nil {
		t.Fatal(err)
	}
	out, err := s.RecordInboundMails(ctx, []InboundRecord{{
		MailID: m.ID, Identity: "email:jana@example.org",
		Contact:      &Contact{CustomerID: 2, Channel: "email", Direction: "in"},
		Conversation: &Conversation{ID: 99, CustomerID: 2},
	}})
	if err != nil || !errors.Is(out[0].Err, ErrNotFound) {
		t.Fatalf("into a conversation that is gone: %+v, %v", out, err)
	}
	if _, err := s.LookupIdentity("email:jana@example.org"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the identity was linked for a message not recorded: %v", err)
	}
}
