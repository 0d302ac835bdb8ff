package store

import (
	"context"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxGroup bounds the writes of one transaction so that one commit does
// not grow without limit under a flood.
const maxGroup = 4096

// write is one caller's change, waiting for its transaction to commit.
type write struct {
	fn        func(*bolt.Tx) error
	submitted time.Time
	done      chan error
}

// opFailed marks which write of a group returned an error.
type opFailed struct {
	i   int
	err error
}

func (e *opFailed) Error() string { return e.err.Error() }

// update runs fn in a write transaction shared with concurrent callers and
// returns once that transaction is committed and fsynced. fn may run more
// than once (when another write of its group fails), so it must set, not
// accumulate, whatever it hands back to its caller.
func (s *Store) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	w := &write{fn: fn, submitted: time.Now(), done: make(chan error, 1)}
	select {
	case s.writes <- w:
	case <-s.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once submitted the write will be committed or fail; the caller must
	// hear which, whatever its context says now.
	err := <-w.done
	if s.metrics != nil {
		s.metrics.writeSeconds.Observe(time.Since(w.submitted).Seconds())
		if err != nil {
			s.metrics.writeErrors.Inc()
		}
	}
	return err
}

// commitLoop is the group committer. It takes every write waiting, runs
// them in one transaction, and starts the next transaction as soon as the
// previous commit returns: no timer, so a lone write waits for exactly one
// fsync, and under load each fsync carries everything that queued up
// during the one before.
func (s *Store) commitLoop() {
	defer close(s.committed)
	group := make([]*write, 0, 64)
	for {
		select {
		case w := <-s.writes:
			group = append(group[:0], w)
		case <-s.closing:
			return
		}
	drain:
		for len(group) < maxGroup {
			select {
			case w := <-s.writes:
				group = append(group, w)
			default:
				break drain
			}
		}
		s.commit(group)
	}
}

// commit runs group in one transaction. A write that fails is answered
// with its error and the rest are committed without it.
func (s *Store) commit(group []*write) {
	for len(group) > 0 {
		start := time.Now()
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i, w := range group {
				if err := w.fn(tx); err != nil {
					return &opFailed{i, err}
				}
			}
			return nil
		})
		var failed *opFailed
		if errors.As(err, &failed) {
			group[failed.i].done <- failed.err
			group = append(group[:failed.i:failed.i], group[failed.i+1:]...)
			continue
		}
		if s.metrics != nil {
			s.metrics.commitSeconds.Observe(time.Since(start).Seconds())
			s.metrics.commitWrites.Observe(float64(len(group)))
		}
		if err != nil {
			s.logger.Error("commit failed", "writes", len(group), "err", err)
		}
		for _, w := range group {
			w.done <- err
		}
		return
	}
}
