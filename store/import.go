package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ImportedCustomer is one customer as a CRM export describes it.
type ImportedCustomer struct {
	CRMID      string
	Name       string
	ValueTier  *int // nil: keep what is stored
	Attributes map[string]string
	Identities []string // normalised "kind:value"
	Now        time.Time
}

// ImportOutcome says what ImportCustomer did.
type ImportOutcome struct {
	CustomerID uint64
	Created    bool
	// Skipped are identities that belong to another customer: with another
	// CRM id (never merged automatically), or one the import did not pick
	// (a merge decision for a person).
	Skipped []string
	// Unlinked are identities a person took from the customer
	// (Customer.Unlinked): not given back.
	Unlinked []string
}

// ImportCustomer creates or updates one customer, in one transaction. The
// customer is found by CRM id, else by the first identity that belongs
// to a customer without a CRM id or with the same one (preferring one a
// person took an identity of the row from); else it is new.
// Importing the same row again changes nothing, so re-imports never
// duplicate.
func (s *Store) ImportCustomer(ctx context.Context, in ImportedCustomer) (ImportOutcome, error) {
	var out ImportOutcome
	err := s.update(ctx, func(tx *bolt.Tx) error {
		out = ImportOutcome{}
		customers := tx.Bucket(bucketCustomers)
		idents := tx.Bucket(bucketIdentities)
		load := func(id []byte) (*Customer, error) {
			var c Customer
			return &c, getJSON(customers, id, &c, "customer", binary.BigEndian.Uint64(id))
		}
		var c *Customer
		if in.CRMID != "" {
			if id := tx.Bucket(bucketCRMIDs).Get([]byte(in.CRMID)); id != nil {
				var err error
				if c, err = load(id); err != nil {
					return err
				}
			}
		}
		// By identity: the first customer it finds, unless one it finds is
		// the customer a person took one of the row's identities from,
		// which a stranger may have since (their next mail made them a
		// customer): the row is the CRM's record of the former.
		var first *Customer
		for _, ident := range in.Identities {
			if c != nil {
				break
			}
			id := idents.Get([]byte(ident))
			if id == nil {
				continue
			}
			owner, err := load(id)
			if err != nil {
				return err
			}
			switch {
			case owner.CRMID != "" && owner.CRMID != in.CRMID:
			case slices.ContainsFunc(in.Identities, func(i string) bool { return slices.Contains(owner.Unlinked, i) }):
				c = owner
			case first == nil:
				first = owner
			}
		}
		if c == nil {
			c = first
		}
		var old *Customer
		if c == nil {
			c = &Customer{Created: in.Now}
			out.Created = true
		} else {
			prev := *c
			prev.Attributes = maps.Clone(c.Attributes)
			old = &prev
		}
		if in.CRMID != "" {
			c.CRMID = in.CRMID
		}
		if in.Name != "" {
			c.Name = in.Name
		}
		if in.ValueTier != nil {
			c.ValueTier = *in.ValueTier
		}
		if len(in.Attributes) > 0 && c.Attributes == nil {
			c.Attributes = map[string]string{}
		}
		maps.Copy(c.Attributes, in.Attributes)
		var err error
		if out.Created {
			err = createCustomer(tx, c)
		} else {
			err = putCustomer(tx, c, old)
		}
		if err != nil {
			return err
		}
		out.CustomerID = c.ID
		for _, ident := range in.Identities {
			var owner uint64 // none
			if id := idents.Get([]byte(ident)); id != nil {
				owner = binary.BigEndian.Uint64(id)
			}
			switch {
			case owner == c.ID:
			case slices.Contains(c.Unlinked, ident):
				out.Unlinked = append(out.Unlinked, ident)
			case owner == 0:
				if err := linkIdentity(tx, ident, c.ID); err != nil {
					return err
				}
			default:
				out.Skipped = append(out.Skipped, fmt.Sprintf("%s (customer %d)", ident, owner))
			}
		}
		return nil
	})
	return out, err
}
