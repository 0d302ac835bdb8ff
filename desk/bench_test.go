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
// with 50 entries, next best actions, mail thread, over HTTP.
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
	events.next(t, "offer")
	path := "/api/desk/tasks/" + jsonNumber(id)
	b.ResetTimer()
	for b.Loop() {
		if code, _ := anna.do("GET", path, ""); code != 200 {
			b.Fatalf("%d", code)
		}
	}
}
