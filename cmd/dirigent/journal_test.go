package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"dirigent/config"
	"dirigent/router"
	"dirigent/store"
)

// The router's journal reaches the store, and the statistics recomputed
// from what was stored equal the router's own.
func TestJournalInStore(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "d.db"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := newDaemonMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := routerConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	j, err := newStoreJournal(st, logger, m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- j.Run(ctx) }()

	var offers []router.Offer
	r, err := router.New(rc, router.Deps{Logger: logger, Journal: j, OnOffer: func(o router.Offer) { offers = append(offers, o) }})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.SetPresence("demo", router.Available, ""))
	must(r.Enqueue(router.Task{ID: 1, Queue: "support", Channel: router.Email}))
	must(r.Accept(1, "demo"))
	must(r.Complete(1))
	must(r.Enqueue(router.Task{ID: 2, Queue: "billing", Channel: router.Voice}))
	must(r.Decline(2, "demo"))
	must(r.Cancel(2, router.ReasonAbandoned))
	must(r.Enqueue(router.Task{ID: 3, Queue: "support", Channel: router.Email, CustomerID: 42}))
	must(r.Accept(3, "demo"))
	must(r.Enqueue(router.Task{ID: 4, Queue: "billing", Channel: router.Email}))
	cancel()
	must(<-done)

	// What a restarted daemon reads back.
	again, err := newStoreJournal(st, logger, m)
	must(err)
	events, err := again.history(time.Time{})
	must(err)
	if len(events) != 15 {
		t.Fatalf("%d events stored, want 15: %+v", len(events), events)
	}
	open := again.unfinished()
	slices.SortFunc(open, func(a, b router.Unfinished) int { return int(a.ID) - int(b.ID) })
	if len(open) != 2 || open[0].ID != 3 || open[0].Agent != "demo" || open[0].CustomerID != 42 || open[1].ID != 4 || open[1].Agent != "" {
		t.Errorf("open tasks after restart: %+v", open)
	}
	live := r.Stats()
	for i, got := range router.Recompute(rc, events, time.Now()) {
		live[i].Waiting, live[i].LongestWait = 0, 0
		if !reflect.DeepEqual(got, live[i]) {
			t.Errorf("queue %s: from the store %+v, live %+v", got.Queue, got, live[i])
		}
	}
	if len(offers) != 4 {
		t.Errorf("offers %+v", offers)
	}
}
