package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// JournalEvent is one line of the router's journal. The payload's format
// is the router's business; the store keeps the time beside it to find
// the events since a moment without decoding them.
type JournalEvent struct {
	At      time.Time
	Payload []byte
}

// JournalBatch is what one journal write changes: events appended in
// order, and the index of open tasks kept in step with them, in the same
// transaction.
type JournalBatch struct {
	Events []JournalEvent
	Open   map[uint64][]byte // task id → task payload, set or replaced
	Closed []uint64          // task ids no longer open
}

// AppendJournal writes b durably, as one transaction.
func (s *Store) AppendJournal(ctx context.Context, b JournalBatch) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		for _, e := range b.Events {
			seq, err := events.NextSequence()
			if err != nil {
				return err
			}
			v := make([]byte, 8+len(e.Payload))
			binary.BigEndian.PutUint64(v, uint64(e.At.UnixNano()))
			copy(v[8:], e.Payload)
			if err := events.Put(u64(seq), v); err != nil {
				return err
			}
		}
		open := tx.Bucket(bucketOpenTasks)
		for id, p := range b.Open {
			if err := open.Put(u64(id), p); err != nil {
				return err
			}
		}
		for _, id := range b.Closed {
			if err := open.Delete(u64(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

// ScanJournal calls fn for every event at or after since, in order, until
// fn returns an error. It finds the first one by binary search, since the
// journal is appended in time order.
func (s *Store) ScanJournal(since time.Time, fn func(JournalEvent) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		last := b.Sequence()
		var ferr error
		first := sort.Search(int(last), func(i int) bool {
			v := b.Get(u64(uint64(i) + 1))
			if len(v) < 8 {
				ferr = fmt.Errorf("journal event %d: corrupt", i+1)
				return true
			}
			return int64(binary.BigEndian.Uint64(v)) >= since.UnixNano()
		})
		if ferr != nil {
			return ferr
		}
		c := b.Cursor()
		for k, v := c.Seek(u64(uint64(first) + 1)); k != nil; k, v = c.Next() {
			e := JournalEvent{At: time.Unix(0, int64(binary.BigEndian.Uint64(v))), Payload: bytes.Clone(v[8:])}
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// OpenTasks calls fn for every task the journal left open, by id.
func (s *Store) OpenTasks(fn func(id uint64, payload []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOpenTasks).ForEach(func(k, v []byte) error {
			return fn(binary.BigEndian.Uint64(k), bytes.Clone(v))
		})
	})
}
