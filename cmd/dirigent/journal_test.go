package main

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"dirigent/config"
	"dirigent/internal/testsite"
	"dirigent/router"
	"dirigent/store"
)

// The router's journal reaches the store, and the statistics recomputed
// from what was stored equal the router's own.
func TestJournalInStore(t *testing.T) {
	var offers []router.Offer
	st, j, r := journalSite(t, func(o router.Offer) { offers = append(offers, o) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- j.Run(ctx) }()
	noErr(t, r.SetPresence("demo", router.Available, ""))
	noErr(t, r.Enqueue(router.Task{ID: 1, Queue: "support", Channel: router.Email}))
	noErr(t, r.Accept(1, "demo"))
	noErr(t, r.Complete(1, "demo"))
	noErr(t, r.Enqueue(router.Task{ID: 2, Queue: "billing", Channel: router.Voice}))
	noErr(t, r.Decline(2, "demo"))
	noErr(t, r.Cancel(2, router.ReasonAbandoned))
	noErr(t, r.Enqueue(router.Task{ID: 3, Queue: "support", Channel: router.Email, CustomerID: 42}))
	noErr(t, r.Accept(3, "demo"))
	noErr(t, r.Enqueue(router.Task{ID: 4, Queue: "billing", Channel: router.Email}))
	cancel()
	noErr(t, <-done)

	// What a restarted daemon reads back.
	again, err := newStoreJournal(st, j.logger, j.metrics)
	noErr(t, err)
	events, err := again.history(time.Time{})
	noErr(t, err)
	if len(events) != 15 {
		t.Fatalf("%d events stored, want 15: %+v", len(events), events)
	}
	open := again.unfinished()
	slices.SortFunc(open, func(a, b router.Unfinished) int { return int(a.ID) - int(b.ID) })
	if len(open) != 2 || open[0].ID != 3 || open[0].Agent != "demo" || open[0].CustomerID != 42 || open[1].ID != 4 || open[1].Agent != "" {
		t.Errorf("open tasks after restart: %+v", open)
	}
	cfg, err := config.Default()
	noErr(t, err)
	rc, err := routerConfig(cfg)
	noErr(t, err)
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

// TestEraseCustomerBeforeTheJournalWrites: a customer erased while the
// creation of their tasks still waits to be written (the journal has not
// flushed) loses them all the same. The router ends them; the open-task
// index, once written, names the customer nowhere, not even for their
// call in progress, which goes on until it ends; so does the task of a
// customer merged into them before, which still names that customer;
// another customer's task stays.
func TestEraseCustomerBeforeTheJournalWrites(t *testing.T) {
	ctx := context.Background()
	st, j, r := journalSite(t, nil)
	flush := func() { j.write(j.drain()) }
	joe, other, josef := &store.Customer{Name: "Joe"}, &store.Customer{Name: "Other"}, &store.Customer{Name: "Josef"}
	noErr(t, st.CreateCustomer(ctx, joe))
	noErr(t, st.CreateCustomer(ctx, other))
	noErr(t, st.CreateCustomer(ctx, josef))

	noErr(t, r.SetPresence("demo", router.Available, ""))
	noErr(t, r.Enqueue(router.Task{ID: 1, Queue: "support", Channel: router.Voice, CustomerID: joe.ID}))
	noErr(t, r.Accept(1, "demo")) // Joe's call, in progress
	noErr(t, r.Enqueue(router.Task{ID: 2, Queue: "support", Channel: router.Email, CustomerID: joe.ID}))
	noErr(t, r.Enqueue(router.Task{ID: 3, Queue: "billing", Channel: router.Email, CustomerID: other.ID}))
	noErr(t, r.Enqueue(router.Task{ID: 4, Queue: "support", Channel: router.Email, CustomerID: josef.ID}))
	if _, err := st.MergeCustomers(ctx, joe.ID, josef.ID, time.Now()); err != nil { // Josef is Joe
		t.Fatal(err)
	}
	openTasks := func() map[uint64]uint64 { // task → customer
		t.Helper()
		open := map[uint64]uint64{}
		noErr(t, st.OpenTasks(func(id uint64, p []byte) error { open[id] = taskCustomer(p); return nil }))
		return open
	}
	if open := openTasks(); len(open) != 0 {
		t.Fatalf("the journal wrote %v before the erasure", open)
	}

	var offDesk forgotten
	admin := customerAdmin{Store: st, storeJournal: j, router: r, desk: &offDesk}
	if _, err := admin.EraseCustomer(ctx, joe.ID); err != nil {
		t.Fatal(err)
	}
	waiting := map[string]int{}
	for _, q := range r.Stats() {
		waiting[q.Queue] = q.Waiting
	}
	if waiting["support"] != 0 || waiting["billing"] != 1 {
		t.Errorf("waiting after the erasure %v, want Joe's mails gone and the other customer's there", waiting)
	}
	flush()
	if open := openTasks(); !maps.Equal(open, map[uint64]uint64{3: other.ID}) {
		t.Errorf("open-task index after the erasure (task → customer) %v, want only task 3 of customer %d", open, other.ID)
	}
	noErr(t, r.End(1)) // Joe hangs up
	flush()
	if open := openTasks(); !maps.Equal(open, map[uint64]uint64{3: other.ID}) {
		t.Errorf("open-task index after the call (task → customer) %v, want only task 3", open)
	}
	events, err := j.history(time.Time{})
	noErr(t, err)
	ended := map[uint64]string{}
	for _, e := range events {
		if e.Customer != 0 {
			t.Errorf("the journal names customer %d: %+v", e.Customer, e)
		}
		switch e.Kind {
		case router.TaskCanceled:
			ended[e.TaskID] = e.Reason
		case router.TaskWrapping, router.TaskCompleted:
			ended[e.TaskID] = e.Kind.String()
		}
	}
	if !maps.Equal(ended, map[uint64]string{1: router.ReasonErased, 2: router.ReasonErased, 4: router.ReasonErased}) {
		t.Errorf("tasks ended %v, want Joe's call and mails canceled as erased", ended)
	}
	if !slices.Equal(offDesk, []uint64{1, 2, 4}) {
		t.Errorf("taken off the desks: %v, want Joe's call (in progress) and mails", offDesk)
	}
}

// forgotten records the tasks taken off the desks.
type forgotten []uint64

func (f *forgotten) ForgetTasks(ids []uint64) { *f = append(*f, ids...) }

// TestMergeRanksOpenTasks: a merge ranks the merged-away customer's
// waiting task by the kept customer's value tier, at once and, through
// the open-task index, after a restart.
func TestMergeRanksOpenTasks(t *testing.T) {
	ctx := context.Background()
	offers := make(chan router.Offer, 10)
	st, j, r := journalSite(t, func(o router.Offer) { offers <- o })
	gold, josef, other := &store.Customer{Name: "Joe", ValueTier: 2}, &store.Customer{Name: "Josef"}, &store.Customer{Name: "Other"}
	noErr(t, st.CreateCustomer(ctx, gold))
	noErr(t, st.CreateCustomer(ctx, josef))
	noErr(t, st.CreateCustomer(ctx, other))
	at := time.Now()
	noErr(t, r.Enqueue(router.Task{ID: 1, Queue: "support", Channel: router.Email, CustomerID: other.ID, Arrived: at}))
	noErr(t, r.Enqueue(router.Task{ID: 2, Queue: "support", Channel: router.Email, CustomerID: josef.ID, Arrived: at.Add(time.Second)}))
	j.write(j.drain())

	admin := customerAdmin{Store: st, storeJournal: j, router: r, desk: &forgotten{}}
	rec, err := admin.MergeCustomers(ctx, gold.ID, josef.ID, time.Now()) // Josef is Joe
	noErr(t, err)
	noErr(t, r.SetPresence("demo", router.Available, ""))
	if o := offered(t, offers); o.TaskID != 2 {
		t.Errorf("offered task %d first, want 2: Josef is gold customer Joe now", o.TaskID)
	}

	// first is the task a restarted router offers first: it learns the
	// merges in force, then queues the open tasks again.
	first := func() uint64 {
		t.Helper()
		offers := make(chan router.Offer, 10)
		_, _, r := journalSite(t, func(o router.Offer) { offers <- o })
		noErr(t, tellMerges(st, r))
		r.Recover(nil, j.unfinished())
		noErr(t, r.SetPresence("demo", router.Available, ""))
		return offered(t, offers).TaskID
	}
	if id := first(); id != 2 {
		t.Errorf("after a restart task %d is offered first, want Josef's, ranked as Joe's", id)
	}
	// Undone, then restarted: Josef's task ranks at his own tier. (The
	// open-task index keeps each task's own tier; merges only rank.)
	_, err = st.UnmergeCustomers(ctx, rec.ID, time.Now())
	noErr(t, err)
	if id := first(); id != 1 {
		t.Errorf("after the unmerge and a restart task %d is offered first, want 1, which came first", id)
	}
}

// TestMergeUnmergeErase: tasks keep the customer they were created for
// through merges and unmerges, so that erasing one of two customers ends
// exactly that customer's tasks: after a merge, erasing the kept customer
// ends the merged-away one's too, also one that came in during the
// merge; after an unmerge, each only their own.
func TestMergeUnmergeErase(t *testing.T) {
	ctx := context.Background()
	st, j, r := journalSite(t, nil)
	admin := customerAdmin{Store: st, storeJournal: j, router: r, desk: &forgotten{}}
	task := func(id, customer uint64) {
		t.Helper()
		noErr(t, r.Enqueue(router.Task{ID: id, Queue: "support", Channel: router.Email, CustomerID: customer}))
		j.write(j.drain())
	}
	open := func(id uint64) bool { return !errors.Is(r.Cancel(id, router.ReasonAbandoned), router.ErrUnknownTask) }
	customers := func(names ...string) []uint64 {
		var ids []uint64
		for _, n := range names {
			c := &store.Customer{Name: n}
			noErr(t, st.CreateCustomer(ctx, c))
			ids = append(ids, c.ID)
		}
		return ids
	}

	// Undone: each erasure ends its own customer's tasks only.
	ids := customers("Joe", "Josef")
	joe, josef := ids[0], ids[1]
	task(1, josef)
	rec, err := admin.MergeCustomers(ctx, joe, josef, time.Now())
	noErr(t, err)
	task(2, josef) // identified as Josef's just before the merge
	task(3, joe)
	_, err = admin.UnmergeCustomers(ctx, rec.ID, time.Now()) // not the same person after all
	noErr(t, err)
	_, err = admin.EraseCustomer(ctx, joe)
	noErr(t, err)
	if open(3) {
		t.Error("Joe's task 3 is still open after his erasure")
	}
	for _, id := range []uint64{1, 2} {
		if !open(id) {
			t.Errorf("Josef's task %d went with Joe's erasure", id)
		}
	}

	// Not undone: erasing the kept customer ends the merged-away one's.
	ids = customers("Ben", "Benno")
	ben, benno := ids[0], ids[1]
	task(4, benno)
	_, err = admin.MergeCustomers(ctx, ben, benno, time.Now())
	noErr(t, err)
	task(5, benno)
	_, err = admin.EraseCustomer(ctx, ben)
	noErr(t, err)
	for _, id := range []uint64{4, 5} {
		if open(id) {
			t.Errorf("Benno's task %d is still open after Ben, whom he was merged into, was erased", id)
		}
	}
}

// TestAnsweredAcrossRestarts: a mail answered before a restart counts as
// answered once, however many restarts it waits through before it is
// answered again: the open-task index keeps that it was answered. So it
// keeps a chat that ended with its agent: taken again, it stays theirs.
func TestAnsweredAcrossRestarts(t *testing.T) {
	_, j, r := journalSite(t, nil)
	noErr(t, r.SetPresence("demo", router.Available, ""))
	noErr(t, r.Enqueue(router.Task{ID: 1, Queue: "support", Channel: router.Email}))
	noErr(t, r.Accept(1, "demo"))
	noErr(t, r.Enqueue(router.Task{ID: 2, Queue: "support", Channel: router.Message}))
	noErr(t, r.Accept(2, "demo"))
	noErr(t, r.ConversationEnded(2))
	j.write(j.drain())
	var offers chan router.Offer
	for range 2 { // each restart queues them again, from the last one's index
		offers = make(chan router.Offer, 2)
		_, next, restarted := journalSite(t, func(o router.Offer) { offers <- o })
		restarted.Recover(nil, j.unfinished())
		next.write(next.drain())
		j, r = next, restarted
	}
	noErr(t, r.SetPresence("demo", router.Available, ""))
	noErr(t, r.Accept(offered(t, offers).TaskID, "demo"))
	noErr(t, r.Accept(offered(t, offers).TaskID, "demo"))
	for _, q := range r.Stats() {
		if q.Queue == "support" && (q.Today.Answered != 0 || q.Today.Offered != 0) {
			t.Errorf("counted again after two restarts: %+v", q.Today)
		}
	}
	if err := r.ReturnTask(2, "demo", "by sven"); !errors.Is(err, router.ErrWrongState) {
		t.Errorf("the ended chat returned after two restarts: %v", err)
	}
	noErr(t, r.ReturnTask(1, "demo", "by sven"))
}

// journalSite is a store, the daemon's journal on it and a router on the
// default configuration that writes to it, with onOffer told of offers.
// The journal's Run does not run: events wait until the test writes
// them (j.write(j.drain())).
func journalSite(t *testing.T, onOffer func(router.Offer)) (*store.Store, *storeJournal, *router.Router) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
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
	site := testsite.New(t, testsite.Options{Logger: logger, Router: rc})
	j, err := newStoreJournal(site.Store, logger, m)
	if err != nil {
		t.Fatal(err)
	}
	site.Wire(testsite.Hooks{Record: j.Record, OnOffer: onOffer})
	return site.Store, j, site.Router
}

// offered is the offer the router has made: it makes offers while the
// call that frees an agent or queues a task runs, so one is there or
// none comes.
func offered(t *testing.T, offers <-chan router.Offer) router.Offer {
	t.Helper()
	select {
	case o := <-offers:
		return o
	default:
		t.Fatal("no offer")
		return router.Offer{}
	}
}

// noErr fails the test on err.
func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
