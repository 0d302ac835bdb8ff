package desk

import (
	"context"
	"fmt"
	"testing"
	"time"

	"dirigent/store"
)

// BenchmarkTaskDetail: what an agent's screen loads when an offer comes
// (for a call, while the phone rings): customer card, journey context
// with 50 entries, next best actions, mail thread (the mail and five
// replies, with their delivery), over HTTP.
func BenchmarkTaskDetail(b *testing.B) {
	t := testing.TB(b)
	env := startDesk(t)
	ctx := context.Background()
	anna, events := availableAgent(t, env, "anna")
	id, customer := newMailTask(t, env, "joe@example.org", "Router kaputt")
	for i := range 50 {
		if err := env.store.AddTouchpoint(ctx, &store.Touchpoint{CustomerID: customer, Type: "order", At: time.Now().Add(-time.Duration(i) * time.Hour), Data: map[string]string{"order": fmt.Sprint(i)}}); err != nil {
			b.Fatal(err)
		}
	}
	mail, err := env.store.Contact(id)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 5 {
		at := mail.Start.Add(time.Duration(i+1) * time.Minute)
		m := &store.OutboundMail{ConversationID: mail.ConversationID, To: "joe@example.org", MessageID: fmt.Sprintf("r%d@dirigent", i), Raw: []byte("x"), Queued: at, NextAttempt: at}
		if err := env.store.QueueOutbound(ctx, m, &store.Contact{CustomerID: customer, Channel: "email", Direction: "out", ConversationID: mail.ConversationID, Agent: "anna", Start: at, End: at, Text: "Antwort"}); err != nil {
			b.Fatal(err)
		}
	}
	events.next(t, "offer")
	path := "/api/desk/tasks/" + jsonNumber(id)
	if code, body := anna.do("GET", path, ""); code != 200 || len(body["deliveries"].(map[string]any)) != 5 {
		b.Fatalf("%d %v: want the five replies' deliveries", code, body["deliveries"])
	}
	b.ResetTimer()
	for b.Loop() {
		if code, _ := anna.do("GET", path, ""); code != 200 {
			b.Fatalf("%d", code)
		}
	}
}
