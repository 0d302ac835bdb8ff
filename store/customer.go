package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// CreateCustomer stores c under a new ID, which it sets in c.
func (s *Store) CreateCustomer(ctx context.Context, c *Customer) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCustomers)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		c.ID = id
		return putJSON(b, u64(id), c)
	})
}

// PutCustomer replaces an existing customer.
func (s *Store) PutCustomer(ctx context.Context, c *Customer) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCustomers)
		if b.Get(u64(c.ID)) == nil {
			return fmt.Errorf("customer %d: %w", c.ID, ErrNotFound)
		}
		return putJSON(b, u64(c.ID), c)
	})
}

// Customer returns the customer with id.
func (s *Store) Customer(id uint64) (*Customer, error) {
	var c Customer
	err := s.db.View(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketCustomers), u64(id), &c, "customer", id)
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// LinkIdentity points identity ("phone:+4930123456") at a customer,
// moving it from any customer it belonged to before.
func (s *Store) LinkIdentity(ctx context.Context, identity string, customerID uint64) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketCustomers).Get(u64(customerID)) == nil {
			return fmt.Errorf("customer %d: %w", customerID, ErrNotFound)
		}
		ids := tx.Bucket(bucketIdentities)
		byCustomer := tx.Bucket(bucketCustomerIDs)
		if old := ids.Get([]byte(identity)); old != nil {
			if err := byCustomer.Delete(append(bytes.Clone(old), identity...)); err != nil {
				return err
			}
		}
		if err := ids.Put([]byte(identity), u64(customerID)); err != nil {
			return err
		}
		return byCustomer.Put(append(u64(customerID), identity...), nil)
	})
}

// LookupIdentity returns the customer an identity belongs to.
func (s *Store) LookupIdentity(identity string) (uint64, error) {
	var id uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketIdentities).Get([]byte(identity))
		if v == nil {
			return fmt.Errorf("identity %q: %w", identity, ErrNotFound)
		}
		id = binary.BigEndian.Uint64(v)
		return nil
	})
	return id, err
}

// Identities returns a customer's identities, sorted.
func (s *Store) Identities(customerID uint64) ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := u64(customerID)
		c := tx.Bucket(bucketCustomerIDs).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			out = append(out, string(k[8:]))
		}
		return nil
	})
	return out, err
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

func getJSON(b *bolt.Bucket, key []byte, v any, what string, id uint64) error {
	data := b.Get(key)
	if data == nil {
		return fmt.Errorf("%s %d: %w", what, id, ErrNotFound)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s %d: %w", what, id, err)
	}
	return nil
}
