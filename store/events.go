package store

import (
	"bytes"
	"context"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// AppendEvents appends journal events (opaque payloads: the router
// decides their format) in order, durably.
func (s *Store) AppendEvents(ctx context.Context, payloads [][]byte) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		for _, p := range payloads {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(u64(seq), p); err != nil {
				return err
			}
		}
		return nil
	})
}

// ScanEvents calls fn for every event with a sequence number ≥ from, in
// order, until fn returns an error.
func (s *Store) ScanEvents(from uint64, fn func(seq uint64, payload []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(u64(from)); k != nil; k, v = c.Next() {
			if err := fn(binary.BigEndian.Uint64(k), bytes.Clone(v)); err != nil {
				return err
			}
		}
		return nil
	})
}
