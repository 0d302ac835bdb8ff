package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestExportAndEraseCustomer(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	var ids, replies [2]uint64
	for i, crm := range []string{"K-1", "K-2"} {
		c := &Customer{CRMID: crm, Name: crm}
		if err := s.CreateCustomer(ctx, c); err != nil {
			t.Fatal(err)
		}
		ids[i] = c.ID
		for _, ident := range []string{"phone:+4930123456" + crm[2:], "email:" + crm + "@example.com"} {
			if err := s.LinkIdentity(ctx, ident, c.ID); err != nil {
				t.Fatal(err)
			}
		}
		for k := range 3 {
			if err := s.AppendContact(ctx, &Contact{CustomerID: c.ID, Start: at.Add(time.Duration(k) * time.Hour), Text: "Rechnung"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddTouchpoint(ctx, &Touchpoint{CustomerID: c.ID, Type: "order", At: at}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutConversation(ctx, &Conversation{CustomerID: c.ID, Channel: "email"}); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendJournal(ctx, JournalBatch{Open: map[uint64][]byte{uint64(100 + i): u64(c.ID)}}); err != nil {
			t.Fatal(err)
		}
		reply := &OutboundMail{To: crm + "@example.com", MessageID: crm + "@dirigent", Raw: []byte("Subject: Re\r\n\r\nIhre Rechnung"), Queued: at}
		if err := s.QueueOutbound(ctx, reply, &Contact{CustomerID: c.ID, Channel: "email", Direction: "out", Start: at.Add(4 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		replies[i] = reply.ID
	}
	exp, err := s.ExportCustomer(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if exp.Customer.CRMID != "K-1" || len(exp.Identities) != 2 || len(exp.Journey) != 5 || len(exp.Conversations) != 1 {
		t.Errorf("export %+v", exp)
	}
	taskCustomer := func(p []byte) uint64 { return binary.BigEndian.Uint64(p) }
	n, err := s.EraseCustomer(ctx, ids[0], taskCustomer)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(n, ErasedCustomer{Identities: 2, JourneyItems: 5, Conversations: 1, OpenTasks: 1, Mails: 1}) {
		t.Errorf("erased %+v", n)
	}
	if _, err := s.Customer(ids[0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("customer still there: %v", err)
	}
	if _, err := s.CustomerByCRMID("K-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("CRM id still indexed: %v", err)
	}
	if _, err := s.LookupIdentity("email:K-1@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("identity still there: %v", err)
	}
	if es, _ := s.Journey(ids[0], time.Time{}, 10); len(es) != 0 {
		t.Errorf("journey still there: %d entries", len(es))
	}
	if _, err := s.Contact(exp.Journey[0].Contact.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("contact still findable: %v", err)
	}
	// The reply to them is gone with its bytes; the other's stays.
	s.db.View(func(tx *bolt.Tx) error {
		for i, id := range replies {
			if gone := tx.Bucket(bucketOutbox).Get(u64(id)) == nil && tx.Bucket(bucketOutboxRaw).Get(u64(id)) == nil; gone != (i == 0) {
				t.Errorf("reply %d to customer %d gone: %v", id, ids[i], gone)
			}
		}
		return nil
	})
	// The other customer is untouched.
	if exp2, err := s.ExportCustomer(ids[1]); err != nil || len(exp2.Journey) != 5 || len(exp2.Identities) != 2 || len(exp2.Conversations) != 1 {
		t.Errorf("other customer after the erase: %+v %v", exp2, err)
	}
	var open int
	s.OpenTasks(func(uint64, []byte) error { open++; return nil })
	if open != 1 {
		t.Errorf("%d open tasks left, want the other customer's 1", open)
	}
	if _, err := s.EraseCustomer(ctx, ids[0], taskCustomer); !errors.Is(err, ErrNotFound) {
		t.Errorf("second erase: %v", err)
	}
}

// TestNothingWrittenForAnErasedCustomer: a call, mail or chat identified
// just before its customer was erased writes no contact in their name
// afterwards; a mail stays pending, to be processed again as new mail.
func TestNothingWrittenForAnErasedCustomer(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	c := &Customer{Name: "Joe"}
	if err := s.CreateCustomer(ctx, c); err != nil {
		t.Fatal(err)
	}
	m := &InboundMail{Received: time.Now().UTC(), Source: "smtp", From: "joe@example.org"}
	if _, err := s.StoreMail(ctx, m, []byte("Subject: Kündigung\r\n\r\nBitte kündigen.")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EraseCustomer(ctx, c.ID, func([]byte) uint64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendContact(ctx, &Contact{CustomerID: c.ID, Channel: "voice"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a call's contact: %v, want not found", err)
	}
	if err := s.AddTouchpoint(ctx, &Touchpoint{CustomerID: c.ID, Type: "order", At: time.Now()}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a touchpoint: %v, want not found", err)
	}
	rec := InboundRecord{MailID: m.ID, Contact: &Contact{CustomerID: c.ID, Channel: "email"},
		Conversation: &Conversation{CustomerID: c.ID, Channel: "email"}, MessageIDs: []string{"<k@example.org>"}}
	out, err := s.RecordInboundMails(ctx, []InboundRecord{rec})
	if err != nil || !errors.Is(out[0].Err, ErrNotFound) {
		t.Errorf("recording the mail: %+v %v, want not found", out, err)
	}
	if _, err := s.ConversationByMessageID("<k@example.org>"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the mail's conversation was written: %v", err)
	}
	if es, err := s.Journey(c.ID, time.Time{}, 10); err != nil || len(es) != 0 {
		t.Errorf("the erased customer's journey: %+v %v", es, err)
	}
	if pending, err := s.PendingMails(); err != nil || len(pending) != 1 || pending[0] != m.ID {
		t.Errorf("pending mails %v %v, want the mail", pending, err)
	}
}

// TestEraseAfterAMerge: the chats and open tasks of a customer merged
// into the erased one, which still name the customer merged away, are
// exported with it and erased with it.
func TestEraseAfterAMerge(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	var ids [3]uint64
	for i := range ids {
		c := &Customer{Name: fmt.Sprint("Kunde ", i)}
		if err := s.CreateCustomer(ctx, c); err != nil {
			t.Fatal(err)
		}
		ids[i] = c.ID
		cs := &ChatSession{CustomerID: c.ID, Entrance: "web", Queue: "support", Lang: "de", Status: "open"}
		if err := s.CreateChatSession(ctx, cs, &Conversation{CustomerID: c.ID, Channel: "message"}, []byte(fmt.Sprint("token", i))); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendJournal(ctx, JournalBatch{Open: map[uint64][]byte{uint64(100 + i): u64(c.ID)}}); err != nil {
			t.Fatal(err)
		}
	}
	// 2 into 1, then 1 into 0: customer 0 holds all three.
	if _, err := s.MergeCustomers(ctx, ids[1], ids[2], time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MergeCustomers(ctx, ids[0], ids[1], time.Now()); err != nil {
		t.Fatal(err)
	}
	exp, err := s.ExportCustomer(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(exp.Chats) != 3 || len(exp.Conversations) != 3 || len(exp.Merges) != 2 {
		t.Errorf("exported %d chats, %d conversations, %d merges; want all three and both merges", len(exp.Chats), len(exp.Conversations), len(exp.Merges))
	}
	n, err := s.EraseCustomer(ctx, ids[0], func(p []byte) uint64 { return binary.BigEndian.Uint64(p) })
	if err != nil {
		t.Fatal(err)
	}
	if n.ChatSessions != 3 || n.OpenTasks != 3 || !slices.Equal(n.Merged, []uint64{ids[1], ids[2]}) {
		t.Errorf("erased %+v", n)
	}
	if open, err := s.OpenChatSessions(); err != nil || len(open) != 0 {
		t.Errorf("chat sessions left: %v %v", open, err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketMerges).Stats().KeyN; n != 0 {
			t.Errorf("%d merge records after the erasure, want none", n)
		}
		return nil
	})
}
