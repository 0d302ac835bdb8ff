package store

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestExportAndEraseCustomer(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	var ids [2]uint64
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
	}
	exp, err := s.ExportCustomer(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if exp.Customer.CRMID != "K-1" || len(exp.Identities) != 2 || len(exp.Journey) != 4 || len(exp.Conversations) != 1 {
		t.Errorf("export %+v", exp)
	}
	taskCustomer := func(p []byte) uint64 { return binary.BigEndian.Uint64(p) }
	n, err := s.EraseCustomer(ctx, ids[0], taskCustomer)
	if err != nil {
		t.Fatal(err)
	}
	if n != (ErasedCustomer{Identities: 2, JourneyItems: 4, Conversations: 1, OpenTasks: 1}) {
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
	// The other customer is untouched.
	if exp2, err := s.ExportCustomer(ids[1]); err != nil || len(exp2.Journey) != 4 || len(exp2.Identities) != 2 || len(exp2.Conversations) != 1 {
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
