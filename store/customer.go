package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrConflict: the change would give a CRM id to two customers.
var ErrConflict = errors.New("conflict")

// ErrLastIdentity: UnlinkIdentity was asked to keep the customer one
// identity, and this is their only one.
var ErrLastIdentity = errors.New("the customer's only identity")

// CreateCustomer stores c under a new ID, which it sets in c.
func (s *Store) CreateCustomer(ctx context.Context, c *Customer) error {
	return s.update(ctx, func(tx *bolt.Tx) error { return createCustomer(tx, c) })
}

func createCustomer(tx *bolt.Tx, c *Customer) error {
	id, err := tx.Bucket(bucketCustomers).NextSequence()
	if err != nil {
		return err
	}
	c.ID = id
	return putCustomer(tx, c, nil)
}

// PutCustomer replaces an existing customer.
func (s *Store) PutCustomer(ctx context.Context, c *Customer) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		var old Customer
		if err := getJSON(tx.Bucket(bucketCustomers), u64(c.ID), &old, "customer", c.ID); err != nil {
			return err
		}
		return putCustomer(tx, c, &old)
	})
}

// putCustomer writes c and keeps the CRM id index in step.
func putCustomer(tx *bolt.Tx, c *Customer, old *Customer) error {
	crm := tx.Bucket(bucketCRMIDs)
	if c.CRMID != "" {
		if owner := crm.Get([]byte(c.CRMID)); owner != nil && binary.BigEndian.Uint64(owner) != c.ID {
			return fmt.Errorf("CRM id %q belongs to customer %d: %w", c.CRMID, binary.BigEndian.Uint64(owner), ErrConflict)
		}
	}
	if old != nil && old.CRMID != "" && old.CRMID != c.CRMID {
		if err := crm.Delete([]byte(old.CRMID)); err != nil {
			return err
		}
	}
	if c.CRMID != "" {
		if err := crm.Put([]byte(c.CRMID), u64(c.ID)); err != nil {
			return err
		}
	}
	if err := indexName(tx, c, old); err != nil {
		return err
	}
	return putJSON(tx.Bucket(bucketCustomers), u64(c.ID), c)
}

// CustomerByCRMID returns the customer with a CRM id.
func (s *Store) CustomerByCRMID(crmID string) (*Customer, error) {
	var c Customer
	err := s.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketCRMIDs).Get([]byte(crmID))
		if id == nil {
			return fmt.Errorf("CRM id %q: %w", crmID, ErrNotFound)
		}
		return getJSON(tx.Bucket(bucketCustomers), id, &c, "customer", binary.BigEndian.Uint64(id))
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// IdentifyOrCreate returns the customer identity belongs to; when none
// does, it creates newCustomer (setting its ID) with that identity, in the
// same transaction, so two contacts arriving at once from a new number
// make one customer, not two.
func (s *Store) IdentifyOrCreate(ctx context.Context, identity string, newCustomer *Customer) (id uint64, created bool, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketIdentities).Get([]byte(identity)); v != nil {
			id, created = binary.BigEndian.Uint64(v), false
			return nil
		}
		if err := createCustomer(tx, newCustomer); err != nil {
			return err
		}
		id, created = newCustomer.ID, true
		return linkIdentity(tx, identity, id)
	})
	return id, created, err
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
		if err := customerExists(tx, customerID); err != nil {
			return err
		}
		return linkIdentity(tx, identity, customerID)
	})
}

// IdentityChange is an identity a person gives to or takes from a
// customer. The customer's journey keeps it as a touchpoint
// (TouchpointIdentityAdded, TouchpointIdentityRemoved) with the
// identity and who did it.
type IdentityChange struct {
	Identity   string
	CustomerID uint64
	By         string // a desk login, or "admin" at the control socket
	At         time.Time
}

// The touchpoints of IdentityChanges; their Data has "identity" and "by".
const (
	TouchpointIdentityAdded   = "identity_added"
	TouchpointIdentityRemoved = "identity_removed"
)

// UnlinkIdentity takes an identity from the customer it belongs to: later
// contacts from it are someone else's (a new customer's), while those
// filed under the customer stay, and a CRM import does not give it back
// (Customer.Unlinked). Replies an agent sent the customer at that address
// no longer count it as given (OutboundMail.ToIdentity), so that an
// answer to one proves nothing again. ErrNotFound when it is not the
// customer's; with keepOne, ErrLastIdentity when it is their only one.
func (s *Store) UnlinkIdentity(ctx context.Context, ch IdentityChange, keepOne bool) error {
	identity, customerID := ch.Identity, ch.CustomerID
	return s.update(ctx, func(tx *bolt.Tx) error {
		ids := tx.Bucket(bucketIdentities)
		if v := ids.Get([]byte(identity)); v == nil || binary.BigEndian.Uint64(v) != customerID {
			return fmt.Errorf("identity %s of customer %d: %w", identity, customerID, ErrNotFound)
		}
		if keepOne {
			// The customer has this one: a second follows it, or none.
			c := tx.Bucket(bucketCustomerIDs).Cursor()
			prefix := u64(customerID)
			c.Seek(prefix)
			if k, _ := c.Next(); k == nil || !bytes.HasPrefix(k, prefix) {
				return fmt.Errorf("%s of customer %d: %w", identity, customerID, ErrLastIdentity)
			}
		}
		if err := ids.Delete([]byte(identity)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCustomerIDs).Delete(append(u64(customerID), identity...)); err != nil {
			return err
		}
		// The customer's replies are on their journey (a merge moved those
		// of the customers merged into them): reading their outbox records
		// from there, not the whole outbox, keeps this write short.
		var given []OutboundMail
		box := tx.Bucket(bucketOutbox)
		err := journeyBackwards(tx, customerID, nil, nil, func(k, v []byte) (bool, error) {
			if k[16] != kindContact || !bytes.Contains(v, []byte(`"outbound_id"`)) {
				return true, nil // most entries, without decoding
			}
			var c Contact
			if err := json.Unmarshal(v, &c); err != nil {
				return false, fmt.Errorf("journey of customer %d: %w", customerID, err)
			}
			if m, err := getOutbound(tx, c.OutboundID, false); err == nil && m.ToIdentity == identity {
				given = append(given, *m)
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, m := range given {
			m.ToIdentity = ""
			if err := putJSON(box, u64(m.ID), &m); err != nil {
				return err
			}
		}
		return recordIdentityChange(tx, ch, true)
	})
}

// AddIdentity gives a customer an identity nobody has, such as one taken
// from them by mistake (which a CRM import then keeps again); one of
// theirs already changes nothing. ErrConflict when it is another
// customer's: UnlinkIdentity there, or merge the two.
func (s *Store) AddIdentity(ctx context.Context, ch IdentityChange) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if added, err := addIdentity(tx, ch.Identity, ch.CustomerID); !added || err != nil {
			return err
		}
		return recordIdentityChange(tx, ch, false)
	})
}

// recordIdentityChange marks the identity taken from the customer, or no
// longer, and adds the change's touchpoint to their journey.
func recordIdentityChange(tx *bolt.Tx, ch IdentityChange, taken bool) error {
	var c Customer
	if err := getJSON(tx.Bucket(bucketCustomers), u64(ch.CustomerID), &c, "customer", ch.CustomerID); err != nil {
		return err
	}
	old := c
	c.Unlinked = slices.DeleteFunc(slices.Clone(c.Unlinked), func(i string) bool { return i == ch.Identity })
	touchpoint := TouchpointIdentityAdded
	if taken {
		c.Unlinked, touchpoint = append(c.Unlinked, ch.Identity), TouchpointIdentityRemoved
	}
	if err := putCustomer(tx, &c, &old); err != nil {
		return err
	}
	return addTouchpoint(tx, &Touchpoint{
		CustomerID: ch.CustomerID, Type: touchpoint, At: ch.At,
		Data: map[string]string{"identity": ch.Identity, "by": ch.By},
	})
}

// addIdentity points a new identity at a customer (added); one of
// theirs already changes nothing, one of another customer's is
// ErrConflict.
func addIdentity(tx *bolt.Tx, identity string, customerID uint64) (added bool, err error) {
	if known, err := identityOf(tx, identity, customerID); known || err != nil {
		return false, err
	}
	return true, linkIdentity(tx, identity, customerID)
}

// identityOf reports whether identity is the customer's already;
// ErrConflict when it is another's, ErrNotFound when the customer is not.
func identityOf(tx *bolt.Tx, identity string, customerID uint64) (bool, error) {
	if err := customerExists(tx, customerID); err != nil {
		return false, err
	}
	v := tx.Bucket(bucketIdentities).Get([]byte(identity))
	if v == nil {
		return false, nil
	}
	if owner := binary.BigEndian.Uint64(v); owner != customerID {
		return false, fmt.Errorf("%w: %s belongs to customer %d; merge the two first", ErrConflict, identity, owner)
	}
	return true, nil
}

// customerExists is ErrNotFound for a customer never created or erased:
// nothing may be written in the name of a customer who was erased while
// their call, mail or chat was on its way to the store.
func customerExists(tx *bolt.Tx, id uint64) error {
	if tx.Bucket(bucketCustomers).Get(u64(id)) == nil {
		return fmt.Errorf("customer %d: %w", id, ErrNotFound)
	}
	return nil
}

func linkIdentity(tx *bolt.Tx, identity string, customerID uint64) error {
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
