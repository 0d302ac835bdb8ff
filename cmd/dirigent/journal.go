package main

import (
	"context"
	"encoding/json"
	"log/slog"

	"dirigent/router"
	"dirigent/store"
)

// journalBuffer is how many router events may wait for the store before
// the router itself waits.
const journalBuffer = 1 << 16

// storeJournal keeps the router's journal in the store. Record is called
// under the router's lock, so it only queues; Run writes the queue in
// batches, one fsynced commit per batch, and flushes it when stopping.
type storeJournal struct {
	store   *store.Store
	logger  *slog.Logger
	metrics *daemonMetrics
	events  chan []byte
}

func newStoreJournal(s *store.Store, logger *slog.Logger, m *daemonMetrics) *storeJournal {
	return &storeJournal{store: s, logger: logger, metrics: m, events: make(chan []byte, journalBuffer)}
}

func (j *storeJournal) Record(e router.Event) {
	b, err := json.Marshal(e)
	if err != nil {
		j.logger.Error("journal: cannot encode event", "kind", e.Kind, "err", err)
		return
	}
	j.events <- b
}

func (j *storeJournal) Run(ctx context.Context) error {
	for {
		select {
		case p := <-j.events:
			j.write(append([][]byte{p}, j.drain()...))
		case <-ctx.Done():
			if rest := j.drain(); len(rest) > 0 {
				j.write(rest)
			}
			return nil
		}
	}
}

func (j *storeJournal) drain() [][]byte {
	var batch [][]byte
	for {
		select {
		case p := <-j.events:
			batch = append(batch, p)
		default:
			return batch
		}
	}
}

func (j *storeJournal) write(batch [][]byte) {
	// Not the run context: a stopping daemon still flushes its journal.
	if err := j.store.AppendEvents(context.Background(), batch); err != nil {
		j.metrics.journalErrors.Inc()
		j.logger.Error("journal: events not stored", "events", len(batch), "err", err)
	}
}
