package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestChatSessionLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	s := openTest(t, path)
	cust := &Customer{Name: "Joe"}
	if err := s.CreateCustomer(ctx, cust); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	token := sha256.Sum256([]byte("secret token"))
	cs := &ChatSession{CustomerID: cust.ID, Entrance: "web", Queue: "support", Lang: "de", Created: t0, Updated: t0}
	conv := &Conversation{CustomerID: cust.ID, Channel: "message", Status: "open", Created: t0, Updated: t0}
	if err := s.CreateChatSession(ctx, cs, conv, token[:]); err != nil {
		t.Fatal(err)
	}
	if cs.ID == 0 || cs.ConversationID != conv.ID || conv.ID == 0 || cs.Status != "open" {
		t.Fatalf("created %+v, conversation %d", cs, conv.ID)
	}
	got, err := s.ChatSessionByToken(token[:])
	if err != nil || got.ID != cs.ID {
		t.Fatalf("by token: %+v, %v", got, err)
	}
	if got, err := s.ChatSessionByConversation(conv.ID); err != nil || got.ID != cs.ID {
		t.Fatalf("by conversation: %+v, %v", got, err)
	}
	other := sha256.Sum256([]byte("other"))
	if _, err := s.ChatSessionByToken(other[:]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}

	// The first customer message makes the contact and the open task.
	first := &ChatMessage{At: t0.Add(time.Second), From: "customer", Text: "Hallo, meine Rechnung", Ref: "c1"}
	contact := &Contact{CustomerID: cust.ID, Channel: "message", Direction: "in", Queue: "support", Start: first.At}
	after, dup, err := s.AppendChatMessage(ctx, ChatAppend{
		SessionID: cs.ID, Message: first, Contact: contact,
		OpenTask: func(id uint64) ([]byte, error) { return []byte(fmt.Sprintf(`{"id":%d}`, id)), nil },
		Update:   func(cs *ChatSession) { cs.Intent = "billing" },
	})
	if err != nil || dup || first.Seq != 1 || after.ContactID != contact.ID || contact.ConversationID != conv.ID || after.Intent != "billing" {
		t.Fatalf("first append: %+v dup %v seq %d, contact %+v, %v", after, dup, first.Seq, contact, err)
	}
	var open []uint64
	if err := s.OpenTasks(func(id uint64, _ []byte) error { open = append(open, id); return nil }); err != nil || len(open) != 1 || open[0] != contact.ID {
		t.Fatalf("open tasks %v, %v", open, err)
	}
	// The same ref again is the same message, not a second one.
	again := &ChatMessage{At: t0.Add(2 * time.Second), From: "customer", Text: "Hallo, meine Rechnung", Ref: "c1"}
	if _, dup, err := s.AppendChatMessage(ctx, ChatAppend{SessionID: cs.ID, Message: again}); err != nil || !dup || again.Seq != 1 {
		t.Fatalf("resent: dup %v seq %d, %v", dup, again.Seq, err)
	}
	reply := &ChatMessage{At: t0.Add(3 * time.Second), From: "agent", Agent: "anna", Text: "Gern, welche Nummer?"}
	if _, _, err := s.AppendChatMessage(ctx, ChatAppend{SessionID: cs.ID, Message: reply, Contact: &Contact{CustomerID: cust.ID}}); err != nil || reply.Seq != 2 {
		t.Fatalf("reply: seq %d, %v", reply.Seq, err)
	}
	missed, err := s.ChatMessages(cs.ID, 1)
	if err != nil || len(missed) != 1 || missed[0].Text != reply.Text {
		t.Fatalf("after 1: %+v, %v", missed, err)
	}
	// Many messages later, a browser sends c1 once more: still found.
	for i := range 10 {
		m := &ChatMessage{At: t0.Add(4 * time.Second), From: "customer", Text: "mehr", Ref: fmt.Sprintf("x%d", i)}
		if _, dup, err := s.AppendChatMessage(ctx, ChatAppend{SessionID: cs.ID, Message: m}); err != nil || dup {
			t.Fatalf("message %d: dup %v, %v", i, dup, err)
		}
	}
	late := &ChatMessage{At: t0.Add(5 * time.Second), From: "customer", Text: "Hallo, meine Rechnung", Ref: "c1"}
	if _, dup, err := s.AppendChatMessage(ctx, ChatAppend{SessionID: cs.ID, Message: late}); err != nil || !dup || late.Seq != 1 {
		t.Fatalf("resent late: dup %v seq %d, %v", dup, late.Seq, err)
	}
	if got, _ := s.ChatSession(cs.ID); got.Seq != 12 {
		t.Fatalf("seq %d, want 12", got.Seq)
	}
	if _, err := s.UpdateChatSession(ctx, cs.ID, func(cs *ChatSession) error { cs.Agent = "anna"; return nil }); err != nil {
		t.Fatal(err)
	}
	openNow, err := s.OpenChatSessions()
	if err != nil || len(openNow) != 1 || openNow[0].Agent != "anna" {
		t.Fatalf("open sessions: %+v, %v", openNow, err)
	}

	end := t0.Add(time.Minute)
	ended, err := s.EndChatSession(ctx, cs.ID, end, func(cs *ChatSession, msgs []ChatMessage) string {
		var b strings.Builder
		for _, m := range msgs {
			fmt.Fprintf(&b, "%s: %s\n", m.From, m.Text)
		}
		return b.String()
	})
	if err != nil || ended.Status != "ended" || !ended.Ended.Equal(end) {
		t.Fatalf("end: %+v, %v", ended, err)
	}
	c, err := s.Contact(contact.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := "customer: Hallo, meine Rechnung\nagent: Gern, welche Nummer?\n" + strings.Repeat("customer: mehr\n", 10); c.Text != want || !c.End.Equal(end) || c.Agent != "anna" {
		t.Fatalf("contact after end: text %q end %v agent %q", c.Text, c.End, c.Agent)
	}
	if gc, err := s.Conversation(conv.ID); err != nil || gc.Status != "closed" {
		t.Fatalf("conversation: %+v, %v", gc, err)
	}
	if _, _, err := s.AppendChatMessage(ctx, ChatAppend{SessionID: cs.ID, Message: &ChatMessage{At: end, From: "customer", Text: "noch da?"}}); !errors.Is(err, ErrChatEnded) {
		t.Fatalf("append after end: %v", err)
	}
	if _, err := s.EndChatSession(ctx, cs.ID, end, nil); !errors.Is(err, ErrChatEnded) {
		t.Fatalf("second end: %v", err)
	}
	if openNow, _ := s.OpenChatSessions(); len(openNow) != 0 {
		t.Fatalf("still open: %+v", openNow)
	}

	// Everything is durable across a reopen.
	s.Close()
	s = openTest(t, path)
	all, err := s.ChatMessages(cs.ID, 0)
	if err != nil || len(all) != 12 {
		t.Fatalf("after reopen: %+v, %v", all, err)
	}
	// A customer's export holds their chats, word for word.
	exp, err := s.ExportCustomer(cust.ID)
	if err != nil || len(exp.Chats) != 1 || exp.Chats[0].Session.ID != cs.ID || len(exp.Chats[0].Messages) != 12 {
		t.Fatalf("export: %+v, %v", exp, err)
	}
	// Text retention empties the messages written before its cut-off.
	if n, err := s.DropContactTexts(ctx, all[5].At.Add(time.Nanosecond)); err != nil || n < 6 {
		t.Fatalf("retention dropped %d, %v", n, err)
	}
	kept, _ := s.ChatMessages(cs.ID, 0)
	for i, m := range kept {
		if (m.Text == "") != !m.At.After(all[5].At) {
			t.Errorf("message %d at %v after retention: %q", i, m.At, m.Text)
		}
	}
	erased, err := s.EraseCustomer(ctx, cust.ID, func([]byte) uint64 { return 0 })
	if err != nil || erased.ChatSessions != 1 {
		t.Fatalf("erase: %+v, %v", erased, err)
	}
	if _, err := s.ChatSession(cs.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("erased session still there: %v", err)
	}
	if msgs, _ := s.ChatMessages(cs.ID, 0); len(msgs) != 0 {
		t.Fatalf("erased messages still there: %+v", msgs)
	}
	if _, err := s.ChatSessionByToken(token[:]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("erased token still finds: %v", err)
	}
}

func TestChatSessionByPeer(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 1)
	now := time.Now().UTC()
	cs := &ChatSession{CustomerID: 1, Entrance: "sip", Peer: "sip:joe@pbx.example.com", Queue: "support", Created: now}
	if err := s.CreateChatSession(ctx, cs, &Conversation{CustomerID: 1, Channel: "message"}, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ChatSessionByPeer("sip:joe@pbx.example.com"); err != nil || got.ID != cs.ID {
		t.Fatalf("by peer: %+v, %v", got, err)
	}
	if _, err := s.EndChatSession(ctx, cs.ID, now, func(*ChatSession, []ChatMessage) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatSessionByPeer("sip:joe@pbx.example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ended session still found by peer: %v", err)
	}
}

// TestChatOfAMergedCustomer: a chat of a customer merged into another
// since it was identified is the kept customer's; one that began before
// the merge makes its contact the kept customer's; a chat of an erased
// customer is not begun.
func TestChatOfAMergedCustomer(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 4)
	now := time.Now().UTC()
	begin := func(customer uint64) (*ChatSession, error) {
		cs := &ChatSession{CustomerID: customer, Entrance: "web", Queue: "support", Created: now}
		return cs, s.CreateChatSession(ctx, cs, &Conversation{CustomerID: customer, Channel: "message"}, []byte(fmt.Sprint("token", customer)))
	}
	early, err := begin(3)
	if err != nil {
		t.Fatal(err)
	}
	// 3 into 2, then 2 into 1.
	if _, err := s.MergeCustomers(ctx, 2, 3, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MergeCustomers(ctx, 1, 2, now); err != nil {
		t.Fatal(err)
	}
	c := &Contact{CustomerID: 3, Channel: "message", Start: now}
	stored, _, err := s.AppendChatMessage(ctx, ChatAppend{SessionID: early.ID, Message: &ChatMessage{From: "customer", Text: "Hallo", At: now}, Contact: c})
	if err != nil || c.CustomerID != 1 || stored.CustomerID != 3 {
		t.Errorf("first message's contact %+v, session %+v, %v: want a contact of customer 1 in customer 3's session (for an undo)", c, stored, err)
	}
	if late, err := begin(2); err != nil || late.CustomerID != 1 {
		t.Errorf("a chat begun for customer 2 after the merges: %+v, %v; want customer 1's", late, err)
	}
	if _, err := s.EraseCustomer(ctx, 4, func([]byte) uint64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	if _, err := begin(4); !errors.Is(err, ErrNotFound) {
		t.Errorf("a chat of the erased customer: %v, want not found", err)
	}
}
