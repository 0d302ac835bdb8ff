package store

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestMergeAndUnmerge(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	mk := func(crm, name string, idents ...string) uint64 {
		c := &Customer{CRMID: crm, Name: name, Attributes: map[string]string{"src": name}}
		if err := s.CreateCustomer(ctx, c); err != nil {
			t.Fatal(err)
		}
		for _, id := range idents {
			if err := s.LinkIdentity(ctx, id, c.ID); err != nil {
				t.Fatal(err)
			}
		}
		for k := range 2 {
			if err := s.AppendContact(ctx, &Contact{CustomerID: c.ID, Start: at.Add(time.Duration(k+int(c.ID)*10) * time.Minute), Subject: name}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutConversation(ctx, &Conversation{CustomerID: c.ID}); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	crm := mk("K-1", "Jörg Müller", "email:joerg@beispiel.de")
	caller := mk("", "Mueller, Joerg", "phone:+4930123456", "email:jm@beispiel.de")
	other := mk("K-2", "Joerg Mueller", "email:j@andere.de")
	stranger := mk("", "Anna Schmidt")

	sug, err := s.MergeSuggestions(crm)
	if err != nil {
		t.Fatal(err)
	}
	if len(sug) != 2 {
		t.Fatalf("suggestions %+v", sug)
	}
	for _, g := range sug {
		switch g.Customer.ID {
		case caller:
			if g.Blocked != "" || !slices.Contains(g.Reasons, "e-mail at the same domain: beispiel.de") {
				t.Errorf("caller suggestion %+v", g)
			}
		case other:
			if g.Blocked == "" {
				t.Errorf("two CRM ids not blocked: %+v", g)
			}
		default:
			t.Errorf("unexpected suggestion %+v", g)
		}
	}
	if _, err := s.MergeCustomers(ctx, crm, other, at); !errors.Is(err, ErrConflict) {
		t.Errorf("merge of two CRM customers: %v", err)
	}
	_ = stranger

	// The caller known only by number joins the CRM customer.
	rec, err := s.MergeCustomers(ctx, caller, crm, at)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := s.ExportCustomer(caller)
	if err != nil {
		t.Fatal(err)
	}
	if exp.Customer.CRMID != "K-1" || len(exp.Identities) != 3 || len(exp.Journey) != 4 || len(exp.Conversations) != 2 {
		t.Errorf("after merge: %+v", exp)
	}
	for _, e := range exp.Journey {
		if e.Contact.CustomerID != caller {
			t.Errorf("contact %d still names customer %d", e.Contact.ID, e.Contact.CustomerID)
		}
		if got, err := s.Contact(e.Contact.ID); err != nil || got.CustomerID != caller {
			t.Errorf("contact %d by id: %+v %v", e.Contact.ID, got, err)
		}
	}
	if c, err := s.CustomerByCRMID("K-1"); err != nil || c.ID != caller {
		t.Errorf("K-1 after merge: %+v %v", c, err)
	}
	if _, err := s.Customer(crm); !errors.Is(err, ErrNotFound) {
		t.Errorf("merged customer still there: %v", err)
	}
	// A contact after the merge stays with the kept customer on un-merge.
	if err := s.AppendContact(ctx, &Contact{CustomerID: caller, Start: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	if _, err := s.UnmergeCustomers(ctx, rec.ID, at); err != nil {
		t.Fatal(err)
	}
	back, err := s.ExportCustomer(crm)
	if err != nil {
		t.Fatal(err)
	}
	if back.Customer.CRMID != "K-1" || back.Customer.Name != "Jörg Müller" || len(back.Identities) != 1 || len(back.Journey) != 2 || len(back.Conversations) != 1 {
		t.Errorf("restored customer %+v", back)
	}
	kept, _ := s.ExportCustomer(caller)
	if kept.Customer.CRMID != "" || len(kept.Identities) != 2 || len(kept.Journey) != 3 || len(kept.Conversations) != 1 {
		t.Errorf("kept customer after un-merge %+v", kept)
	}
	if _, err := s.UnmergeCustomers(ctx, rec.ID, at); !errors.Is(err, ErrConflict) {
		t.Errorf("second un-merge: %v", err)
	}
}
