package store

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// Bulk is one transaction adding many records: history migrated from
// another system, or a large test fixture. Its methods do what the
// Store's methods of the same names do, without a commit each.
type Bulk struct{ tx *bolt.Tx }

// Bulk runs fn in one write transaction. Keep transactions to some tens
// of thousands of records: everything is held in memory until commit.
func (s *Store) Bulk(ctx context.Context, fn func(*Bulk) error) error {
	return s.update(ctx, func(tx *bolt.Tx) error { return fn(&Bulk{tx}) })
}

// CreateCustomer stores c under a new ID, which it sets in c.
func (b *Bulk) CreateCustomer(c *Customer) error { return createCustomer(b.tx, c) }

// LinkIdentity points identity at a customer.
func (b *Bulk) LinkIdentity(identity string, customerID uint64) error {
	return linkIdentity(b.tx, identity, customerID)
}

// AppendContact stores a new contact under a new ID, which it sets in c.
func (b *Bulk) AppendContact(c *Contact) error { return appendContact(b.tx, c) }
