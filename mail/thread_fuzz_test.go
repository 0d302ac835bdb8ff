package mail

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"dirigent/store"
)

// FuzzProcess stores and processes any message beside a conversation of
// Joe's, with a reply an agent sent to another address of his (REPLY in
// the message is its Message-ID), and checks what threading promises:
// nothing panics, a message joins a conversation only of the customer it
// was identified as (never someone else's ticket, whatever its
// In-Reply-To, References or tag say), it is filed under a customer
// only when its sender's address is that customer's (or, automatic, it
// answers the reply from the address it went to), and no address but his
// own and the one the reply went to becomes Joe's.
func FuzzProcess(f *testing.F) {
	for _, seed := range []string{
		"From: eve@example.net\r\nSubject: Re: Rechnung\r\nIn-Reply-To: <m1@example.org>\r\n\r\nIch auch",
		"From: eve@example.net\r\nSubject: Re: [#DG-1] Rechnung\r\n\r\nIch auch",
		"From: joe@example.org\r\nSubject: Re: [#DG-1]\r\nReferences: <x@y> <m1@example.org>\r\n\r\nNoch da?",
		"From: form@shop.example\r\nReply-To: joe@example.org\r\nSubject: [#DG-1]\r\n\r\nForm",
		"From: =?utf-8?q?J=C3=B6e?= <joe@example.org>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--",
		"Subject: kein Absender\r\n\r\n",
		"From: joe.neu@example.org\r\nSubject: Re: Rechnung\r\nIn-Reply-To: <REPLY>\r\n\r\nDanke",
		"From: eve@example.net\r\nSubject: Re: Rechnung\r\nReferences: <REPLY>\r\n\r\nIch auch",
		"From: joe.neu@example.org\r\nAuto-Submitted: auto-replied\r\nIn-Reply-To: <REPLY>\r\n\r\nAbwesend",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s := newSite(t, Config{SMTP: SMTPConfig{Addresses: []string{"support@example.com"}}})
		ctx := context.Background()
		process := func(raw []byte) *store.Contact {
			m := &store.InboundMail{Received: time.Now().UTC(), Source: "smtp", From: "x@example.org", Recipients: []string{"support@example.com"}}
			if _, err := s.st.StoreMail(ctx, m, raw); err != nil {
				t.Fatal(err)
			}
			if outcome, err := s.ch.process(ctx, m.ID); err != nil && outcome != "unreadable" {
				t.Fatalf("processing: %s: %v", outcome, err)
			}
			var found *store.Contact
			s.st.ScanContacts(func(c *store.Contact) error {
				if c.MailID == m.ID {
					found = c
				}
				return nil
			})
			return found
		}
		joe := process([]byte("From: Joe <joe@example.org>\r\nSubject: Rechnung\r\nMessage-ID: <m1@example.org>\r\n\r\nFalsch"))
		if joe == nil {
			t.Fatal("Joe's first mail made no contact")
		}
		reply, err := s.ch.Reply(ctx, joe.ConversationID, "anna", "joe.neu@example.org", "Anbei.")
		if err != nil {
			t.Fatal(err)
		}
		raw = bytes.ReplaceAll(raw, []byte("REPLY"), []byte(reply.MessageID))
		c := process(raw)
		if c == nil {
			return // unreadable: kept, no contact
		}
		conv, err := s.st.Conversation(c.ConversationID)
		if err != nil {
			t.Fatalf("contact %+v has no conversation: %v", c, err)
		}
		if conv.CustomerID != c.CustomerID {
			t.Fatalf("the message of customer %d joined conversation %d of customer %d", c.CustomerID, conv.ID, conv.CustomerID)
		}
		if c.BounceOf != 0 {
			return // the mail system's, in the conversation of the reply it returns
		}
		p, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := s.ch.customerAddress(p)
		id, err := s.ch.emailIdentity(addr)
		if err != nil {
			t.Fatalf("a contact from %q, no address: %v", addr, err)
		}
		owner, err := s.st.LookupIdentity(id)
		responder := c.Outcome == store.OutcomeAutomatic && errors.Is(err, store.ErrNotFound) && id == "email:joe.neu@example.org" && c.ConversationID == joe.ConversationID
		if !responder && (err != nil || owner != c.CustomerID) {
			t.Fatalf("the message from %s was filed under customer %d; the address is %d's (%v)", id, c.CustomerID, owner, err)
		}
		if c.CustomerID == joe.CustomerID && id != "email:joe@example.org" && id != "email:joe.neu@example.org" {
			t.Fatalf("%s became Joe's", id)
		}
	})
}
