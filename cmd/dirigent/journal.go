package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"dirigent/router"
	"dirigent/store"
)

// journalBuffer is how many router events may wait for the store before
// the router itself waits.
const journalBuffer = 1 << 16

// storeJournal keeps the router's journal in the store, together with the
// index of open tasks that a restart queues again. Record is called under
// the router's lock, so it only queues; Run writes the queue in batches,
// one fsynced commit per batch, and flushes it when stopping.
type storeJournal struct {
	store   *store.Store
	logger  *slog.Logger
	metrics *daemonMetrics
	events  chan router.Event

	mu   sync.Mutex
	open map[uint64]router.Unfinished
	// erased are the customers erased since the process started: a task
	// of theirs the router created before the erasure, still queued here
	// then, gets no entry in the open-task index when it is written.
	erased map[uint64]bool
}

// newStoreJournal loads the open tasks the previous process left.
func newStoreJournal(s *store.Store, logger *slog.Logger, m *daemonMetrics) (*storeJournal, error) {
	j := &storeJournal{store: s, logger: logger, metrics: m, events: make(chan router.Event, journalBuffer), open: map[uint64]router.Unfinished{}, erased: map[uint64]bool{}}
	err := s.OpenTasks(func(id uint64, p []byte) error {
		var u router.Unfinished
		if err := json.Unmarshal(p, &u); err != nil {
			return fmt.Errorf("open task %d: %w", id, err)
		}
		j.open[id] = u
		return nil
	})
	return j, err
}

// unfinished is what the previous process left open, for router.Recover.
func (j *storeJournal) unfinished() []router.Unfinished {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]router.Unfinished, 0, len(j.open))
	for _, u := range j.open {
		out = append(out, u)
	}
	return out
}

// history returns the journal's events since since.
func (j *storeJournal) history(since time.Time) ([]router.Event, error) {
	var events []router.Event
	err := j.store.ScanJournal(since, func(je store.JournalEvent) error {
		var e router.Event
		if err := json.Unmarshal(je.Payload, &e); err != nil {
			return fmt.Errorf("journal event at %s: %w", je.At, err)
		}
		events = append(events, e)
		return nil
	})
	return events, err
}

func (j *storeJournal) Record(e router.Event) { j.events <- e }

func (j *storeJournal) Run(ctx context.Context) error {
	for {
		select {
		case e := <-j.events:
			j.write(append([]router.Event{e}, j.drain()...))
		case <-ctx.Done():
			if rest := j.drain(); len(rest) > 0 {
				j.write(rest)
			}
			return nil
		}
	}
}

func (j *storeJournal) drain() []router.Event {
	var batch []router.Event
	for {
		select {
		case e := <-j.events:
			batch = append(batch, e)
		default:
			return batch
		}
	}
}

func (j *storeJournal) write(events []router.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	b := store.JournalBatch{Open: map[uint64][]byte{}}
	for _, e := range events {
		// The journal keeps no customer: the open-task index below does,
		// while the task is open, and EraseCustomer clears it there.
		stored := e
		stored.Customer = 0
		p, err := json.Marshal(stored)
		if err != nil {
			j.logger.Error("journal: cannot encode event", "kind", e.Kind, "err", err)
			continue
		}
		b.Events = append(b.Events, store.JournalEvent{At: e.At, Payload: p})
		switch e.Kind {
		case router.TaskCreated:
			// An erased customer's task is ended as erased right after
			// the erasure (customerAdmin.EraseCustomer); nothing may
			// name the customer meanwhile, nor queue it after a restart.
			if !j.erased[e.Customer] {
				j.setOpen(&b, router.UnfinishedFrom(e))
			}
		case router.TaskAssigned, router.ConversationEnded:
			if u, ok := j.open[e.TaskID]; ok {
				u.Agent = e.Agent
				u.Closed = u.Closed || e.Kind == router.ConversationEnded
				j.setOpen(&b, u)
			}
		case router.TaskCompleted, router.TaskCanceled:
			delete(j.open, e.TaskID)
			delete(b.Open, e.TaskID)
			b.Closed = append(b.Closed, e.TaskID)
		}
	}
	// Not the run context: a stopping daemon still flushes its journal.
	if err := j.store.AppendJournal(context.Background(), b); err != nil {
		j.metrics.journalErrors.Inc()
		j.logger.Error("journal: events not stored", "events", len(b.Events), "err", err)
	}
}

func (j *storeJournal) setOpen(b *store.JournalBatch, u router.Unfinished) {
	j.open[u.ID] = u
	p, err := json.Marshal(u)
	if err != nil {
		j.logger.Error("journal: cannot encode open task", "task", u.ID, "err", err)
		return
	}
	b.Open[u.ID] = p
}

// taskCustomer reads the customer of an open-task index entry.
func taskCustomer(payload []byte) uint64 {
	var u router.Unfinished
	if json.Unmarshal(payload, &u) != nil {
		return 0
	}
	return u.CustomerID
}

// EraseCustomer erases a customer from the store and forgets their open
// tasks, under the lock that write holds, so no batch in flight writes
// the customer back into the index; nor does a later one, for a task
// whose creation has not been written yet. It returns the tasks it
// forgot; those not written yet only the router knows.
func (j *storeJournal) EraseCustomer(ctx context.Context, id uint64) (store.ErasedCustomer, []uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n, err := j.store.EraseCustomer(ctx, id, taskCustomer)
	if err != nil {
		return n, nil, err
	}
	ids := append([]uint64{id}, n.Merged...)
	for _, c := range ids {
		j.erased[c] = true
	}
	var tasks []uint64
	for tid, u := range j.open {
		if slices.Contains(ids, u.CustomerID) {
			delete(j.open, tid)
			tasks = append(tasks, tid)
		}
	}
	return n, tasks, nil
}
