package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	bolt "go.etcd.io/bbolt"
)

// nameKey folds a name for finding look-alike customers: lower case,
// umlauts spelled out, punctuation dropped, words sorted, so that
// "Müller, Jörg" and "Joerg Mueller" meet. Empty for names of one letter.
func nameKey(name string) string {
	r := strings.NewReplacer("ä", "ae", "ö", "oe", "ü", "ue", "ß", "ss", "é", "e", "è", "e", "á", "a", "à", "a")
	words := strings.FieldsFunc(r.Replace(strings.ToLower(name)), func(c rune) bool {
		return !unicode.IsLetter(c) && !unicode.IsDigit(c)
	})
	slices.Sort(words)
	key := strings.Join(words, " ")
	if len(key) < 2 {
		return ""
	}
	return key
}

func nameIndexKey(name string, id uint64) []byte {
	return append(append([]byte(nameKey(name)), 0), u64(id)...)
}

// indexName keeps the look-alike index in step with a customer's name.
func indexName(tx *bolt.Tx, c *Customer, old *Customer) error {
	names := tx.Bucket(bucketNames)
	if old != nil && nameKey(old.Name) != "" {
		if err := names.Delete(nameIndexKey(old.Name, old.ID)); err != nil {
			return err
		}
	}
	if nameKey(c.Name) == "" {
		return nil
	}
	return names.Put(nameIndexKey(c.Name, c.ID), nil)
}

// MergeSuggestion is a customer that may be the same person as another.
type MergeSuggestion struct {
	Customer Customer `json:"customer"`
	Reasons  []string `json:"reasons"`
	// Blocked says why the two must not be merged as they are (two CRM
	// ids); empty when a merge is possible.
	Blocked string `json:"blocked,omitempty"`
}

// MergeSuggestions lists customers that look like customer id: the same
// name, folded; the reasons say what else they share.
func (s *Store) MergeSuggestions(id uint64) ([]MergeSuggestion, error) {
	var out []MergeSuggestion
	err := s.db.View(func(tx *bolt.Tx) error {
		var c Customer
		if err := getJSON(tx.Bucket(bucketCustomers), u64(id), &c, "customer", id); err != nil {
			return err
		}
		key := nameKey(c.Name)
		if key == "" {
			return nil
		}
		domains := emailDomains(tx, id)
		prefix := append([]byte(key), 0)
		cur := tx.Bucket(bucketNames).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			other := binary.BigEndian.Uint64(k[len(prefix):])
			if other == id {
				continue
			}
			var o Customer
			if err := getJSON(tx.Bucket(bucketCustomers), u64(other), &o, "customer", other); err != nil {
				return err
			}
			sug := MergeSuggestion{Customer: o, Reasons: []string{"same name: " + o.Name}}
			for d := range emailDomains(tx, other) {
				if domains[d] {
					sug.Reasons = append(sug.Reasons, "e-mail at the same domain: "+d)
				}
			}
			if c.CRMID != "" && o.CRMID != "" && c.CRMID != o.CRMID {
				sug.Blocked = fmt.Sprintf("different CRM ids (%s, %s): never merged; fix the CRM first", c.CRMID, o.CRMID)
			}
			out = append(out, sug)
		}
		return nil
	})
	return out, err
}

func emailDomains(tx *bolt.Tx, id uint64) map[string]bool {
	out := map[string]bool{}
	prefix := u64(id)
	c := tx.Bucket(bucketCustomerIDs).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if ident := string(k[8:]); strings.HasPrefix(ident, "email:") {
			if _, d, ok := strings.Cut(ident, "@"); ok {
				out[d] = true
			}
		}
	}
	return out
}

// Merge is the record of one merge, kept so that it can be undone.
type Merge struct {
	ID            uint64     `json:"id"`
	Keep          uint64     `json:"keep"`
	Merged        Customer   `json:"merged"`      // the merged-away customer as it was
	KeepBefore    Customer   `json:"keep_before"` // the kept customer as it was
	Identities    []string   `json:"identities"`
	Entries       []keyMove  `json:"entries"`
	Conversations []uint64   `json:"conversations"`
	At            time.Time  `json:"at"`
	Undone        *time.Time `json:"undone,omitempty"`
}

type keyMove struct {
	Old []byte `json:"old"`
	New []byte `json:"new"`
}

// MergeCustomers makes other part of keep: identities, contacts,
// touchpoints and conversations move over, keep takes other's CRM id,
// name and attributes where it has none and the higher value tier, and
// other is gone. Two customers with different CRM ids are refused
// (ErrConflict). The returned record's ID undoes it (UnmergeCustomers).
func (s *Store) MergeCustomers(ctx context.Context, keep, other uint64, at time.Time) (*Merge, error) {
	var rec *Merge
	err := s.update(ctx, func(tx *bolt.Tx) error {
		customers := tx.Bucket(bucketCustomers)
		var k, o Customer
		if err := getJSON(customers, u64(keep), &k, "customer", keep); err != nil {
			return err
		}
		if err := getJSON(customers, u64(other), &o, "customer", other); err != nil {
			return err
		}
		if keep == other {
			return fmt.Errorf("customer %d cannot be merged with itself: %w", keep, ErrConflict)
		}
		if k.CRMID != "" && o.CRMID != "" && k.CRMID != o.CRMID {
			return fmt.Errorf("customers %d and %d have different CRM ids (%s, %s): %w", keep, other, k.CRMID, o.CRMID, ErrConflict)
		}
		rec = &Merge{Keep: keep, Merged: o, KeepBefore: k, At: at}
		// other's record goes first, so its CRM id is free for keep.
		if err := deleteCustomerRecord(tx, &o); err != nil {
			return err
		}
		merged := k
		merged.Attributes = maps.Clone(k.Attributes)
		if merged.CRMID == "" {
			merged.CRMID = o.CRMID
		}
		if merged.Name == "" {
			merged.Name = o.Name
		}
		merged.ValueTier = max(merged.ValueTier, o.ValueTier)
		for a, v := range o.Attributes {
			if _, ok := merged.Attributes[a]; !ok {
				if merged.Attributes == nil {
					merged.Attributes = map[string]string{}
				}
				merged.Attributes[a] = v
			}
		}
		var err error
		if rec.Identities, err = moveIdentities(tx, other, keep, nil); err != nil {
			return err
		}
		// What a person took from either stays taken, but for what the
		// merge gives keep (the way back for one taken by mistake).
		merged.Unlinked = slices.DeleteFunc(slices.Concat(k.Unlinked, o.Unlinked), func(i string) bool { return slices.Contains(rec.Identities, i) })
		slices.Sort(merged.Unlinked)
		merged.Unlinked = slices.Compact(merged.Unlinked)
		if err := putCustomer(tx, &merged, &k); err != nil {
			return err
		}
		if rec.Entries, err = moveEntries(tx, other, keep); err != nil {
			return err
		}
		if rec.Conversations, err = moveConversations(tx, other, keep, nil); err != nil {
			return err
		}
		merges := tx.Bucket(bucketMerges)
		if rec.ID, err = merges.NextSequence(); err != nil {
			return err
		}
		return putJSON(merges, u64(rec.ID), rec)
	})
	return rec, err
}

// UnmergeCustomers undoes a merge: the merged-away customer comes back
// with its ID, record, identities, contacts, touchpoints and
// conversations; what keep gained since the merge stays with keep.
func (s *Store) UnmergeCustomers(ctx context.Context, mergeID uint64, at time.Time) (*Merge, error) {
	var rec Merge
	err := s.update(ctx, func(tx *bolt.Tx) error {
		merges := tx.Bucket(bucketMerges)
		if err := getJSON(merges, u64(mergeID), &rec, "merge", mergeID); err != nil {
			return err
		}
		if rec.Undone != nil {
			return fmt.Errorf("merge %d was undone at %s: %w", mergeID, rec.Undone.Format(time.RFC3339), ErrConflict)
		}
		customers := tx.Bucket(bucketCustomers)
		var k Customer
		if err := getJSON(customers, u64(rec.Keep), &k, "customer", rec.Keep); err != nil {
			return fmt.Errorf("the kept customer is gone: %w", err)
		}
		if customers.Get(u64(rec.Merged.ID)) != nil {
			return fmt.Errorf("customer %d exists again: %w", rec.Merged.ID, ErrConflict)
		}
		if k.CRMID == rec.Merged.CRMID && rec.KeepBefore.CRMID != k.CRMID {
			before := k
			k.CRMID = rec.KeepBefore.CRMID
			if err := putCustomer(tx, &k, &before); err != nil {
				return err
			}
		}
		// The merged customer's identities a person took from keep since
		// are taken from them too (and stay so for keep).
		restored := rec.Merged
		for _, i := range k.Unlinked {
			if slices.Contains(rec.Identities, i) && !slices.Contains(restored.Unlinked, i) {
				restored.Unlinked = append(restored.Unlinked, i)
			}
		}
		if err := putCustomer(tx, &restored, nil); err != nil {
			return err
		}
		if _, err := moveIdentities(tx, rec.Keep, rec.Merged.ID, rec.Identities); err != nil {
			return err
		}
		for _, m := range rec.Entries {
			if err := moveEntry(tx, m.New, m.Old, rec.Merged.ID); err != nil {
				return err
			}
		}
		if _, err := moveConversations(tx, rec.Keep, rec.Merged.ID, rec.Conversations); err != nil {
			return err
		}
		rec.Undone = &at
		return putJSON(merges, u64(mergeID), &rec)
	})
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// readMerges are every merge record, undone ones too.
func readMerges(tx *bolt.Tx) ([]Merge, error) {
	var merges []Merge
	err := tx.Bucket(bucketMerges).ForEach(func(k, v []byte) error {
		var m Merge
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("merge %d: %w", binary.BigEndian.Uint64(k), err)
		}
		merges = append(merges, m)
		return nil
	})
	return merges, err
}

// ActiveMerges returns the merges not undone, oldest first.
func (s *Store) ActiveMerges() ([]Merge, error) {
	var active []Merge
	err := s.db.View(func(tx *bolt.Tx) error {
		merges, err := readMerges(tx)
		for _, m := range merges {
			if m.Undone == nil {
				active = append(active, m)
			}
		}
		return err
	})
	return active, err
}

// names tells whether the merge kept or merged away one of ids.
func (m *Merge) names(ids []uint64) bool {
	return slices.Contains(ids, m.Keep) || slices.Contains(ids, m.Merged.ID)
}

// mergedInto is id and the customers merged into it, directly or
// through others, by merges not undone. A merge moves identities, the
// journey and conversations; chat sessions and open tasks keep naming
// the customer merged away, so access and erasure look for all of them.
func mergedInto(merges []Merge, id uint64) []uint64 {
	ids := []uint64{id}
	for grown := true; grown; {
		grown = false
		for _, m := range merges {
			if m.Undone == nil && slices.Contains(ids, m.Keep) && !slices.Contains(ids, m.Merged.ID) {
				ids, grown = append(ids, m.Merged.ID), true
			}
		}
	}
	return ids
}

// CustomerNow is the customer id stands for now: itself while it
// exists, else the one it was merged into, through later merges too, by
// merges not undone; ErrNotFound when it was erased. A chat that began
// before its customer was merged away goes on as the kept customer's.
func (s *Store) CustomerNow(id uint64) (uint64, error) {
	var now uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		now, err = customerNow(tx, id)
		return err
	})
	return now, err
}

func customerNow(tx *bolt.Tx, id uint64) (uint64, error) {
	if tx.Bucket(bucketCustomers).Get(u64(id)) != nil {
		return id, nil
	}
	merges, err := readMerges(tx)
	if err != nil {
		return 0, err
	}
	// Live merges form chains, never cycles: a merge needs both customers,
	// an undo the kept one.
	for cur, hops := id, 0; hops <= len(merges); hops++ {
		i := slices.IndexFunc(merges, func(m Merge) bool { return m.Undone == nil && m.Merged.ID == cur })
		if i < 0 {
			break
		}
		if cur = merges[i].Keep; tx.Bucket(bucketCustomers).Get(u64(cur)) != nil {
			return cur, nil
		}
	}
	return 0, fmt.Errorf("customer %d: %w", id, ErrNotFound)
}

func deleteCustomerRecord(tx *bolt.Tx, c *Customer) error {
	if c.CRMID != "" {
		if err := tx.Bucket(bucketCRMIDs).Delete([]byte(c.CRMID)); err != nil {
			return err
		}
	}
	if nameKey(c.Name) != "" {
		if err := tx.Bucket(bucketNames).Delete(nameIndexKey(c.Name, c.ID)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketCustomers).Delete(u64(c.ID))
}

// moveIdentities moves from's identities (only those listed, when only is
// not nil and they still belong to from) to to, returning what moved.
func moveIdentities(tx *bolt.Tx, from, to uint64, only []string) ([]string, error) {
	var moved []string
	prefix := u64(from)
	c := tx.Bucket(bucketCustomerIDs).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if ident := string(k[8:]); only == nil || slices.Contains(only, ident) {
			moved = append(moved, ident)
		}
	}
	for _, ident := range moved {
		if err := linkIdentity(tx, ident, to); err != nil {
			return nil, err
		}
	}
	return moved, nil
}

// moveEntries moves every journey entry of from to to.
func moveEntries(tx *bolt.Tx, from, to uint64) ([]keyMove, error) {
	var moves []keyMove
	prefix := u64(from)
	c := tx.Bucket(bucketJourney).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		newKey := append(u64(to), k[8:]...)
		moves = append(moves, keyMove{Old: bytes.Clone(k), New: newKey})
	}
	for _, m := range moves {
		if err := moveEntry(tx, m.Old, m.New, to); err != nil {
			return nil, err
		}
	}
	return moves, nil
}

// moveEntry re-keys one journey entry to customer (a no-op when it is
// gone, e.g. erased since).
func moveEntry(tx *bolt.Tx, oldKey, newKey []byte, customer uint64) error {
	j := tx.Bucket(bucketJourney)
	v := j.Get(oldKey)
	if v == nil {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(v, &fields); err != nil {
		return err
	}
	fields["customer_id"] = json.RawMessage(fmt.Sprint(customer))
	if err := j.Delete(oldKey); err != nil {
		return err
	}
	if err := putJSON(j, newKey, fields); err != nil {
		return err
	}
	agents := tx.Bucket(bucketAgentJourney)
	if agent := agents.Get(oldKey); agent != nil {
		if err := agents.Put(newKey, bytes.Clone(agent)); err != nil {
			return err
		}
		if err := agents.Delete(oldKey); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketJourneyKeys).Put(bytes.Clone(newKey[16:]), newKey)
}

// moveConversations moves from's conversations (only those listed, when
// only is not nil) to to.
func moveConversations(tx *bolt.Tx, from, to uint64, only []uint64) ([]uint64, error) {
	b := tx.Bucket(bucketConversations)
	var moved []Conversation
	if err := b.ForEach(func(k, v []byte) error {
		var conv Conversation
		if err := json.Unmarshal(v, &conv); err != nil {
			return err
		}
		if conv.CustomerID == from && (only == nil || slices.Contains(only, conv.ID)) {
			moved = append(moved, conv)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	ids := make([]uint64, 0, len(moved))
	for _, conv := range moved {
		conv.CustomerID = to
		if err := putJSON(b, u64(conv.ID), conv); err != nil {
			return nil, err
		}
		ids = append(ids, conv.ID)
	}
	return ids, nil
}
