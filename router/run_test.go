package router

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// TestRunHandlesDeadlinesWithoutOperations: with the real clock and no
// calls into the router, Run alone times out an unanswered offer.
func TestRunHandlesDeadlinesWithoutOperations(t *testing.T) {
	cfg := basicConfig()
	cfg.OfferTimeout = 50 * time.Millisecond
	revoked := make(chan Offer, 1)
	r, err := New(cfg, Deps{
		Logger:   slog.New(slog.DiscardHandler),
		Journal:  &memJournal{},
		OnRevoke: func(o Offer) { revoked <- o },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Alive(context.Background()); err == nil {
		t.Error("Alive before Run started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	if err := r.SetPresence("anna", Available, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.Enqueue(Task{ID: 1, Queue: "support", Channel: Voice}); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-revoked:
		if o.TaskID != 1 {
			t.Errorf("revoked %+v", o)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the offer never timed out")
	}
	if err := r.Alive(context.Background()); err != nil {
		t.Errorf("Alive while running: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
