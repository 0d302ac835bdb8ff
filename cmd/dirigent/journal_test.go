package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"reflect"
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
	j := newStoreJournal(st, logger, m)
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
	cancel()
	must(<-done)

	var events []router.Event
	must(st.ScanEvents(0, func(_ uint64, p []byte) error {
		var e router.Event
		if err := json.Unmarshal(p, &e); err != nil {
			return err
		}
		events = append(events, e)
		return nil
	}))
	if len(events) != 10 {
		t.Fatalf("%d events stored, want 10: %+v", len(events), events)
	}
	live := r.Stats()
	for i, got := range router.Recompute(rc, events, time.Now()) {
		live[i].Waiting, live[i].LongestWait = 0, 0
		if !reflect.DeepEqual(got, live[i]) {
			t.Errorf("queue %s: from the store %+v, live %+v", got.Queue, got, live[i])
		}
	}
	if len(offers) != 2 {
		t.Errorf("offers %+v", offers)
	}
}
