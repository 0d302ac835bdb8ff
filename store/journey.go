package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Kinds of journey entries, the byte after the time in a journey key.
const (
	kindContact    byte = 'c'
	kindTouchpoint byte = 't'
)

// journeyKey is customer | time | kind | id, 25 bytes, so that a
// customer's journey is one prefix and sorts by time. The time is the
// sign-flipped unix nanosecond count, which sorts like the time itself.
func journeyKey(customer uint64, at time.Time, kind byte, id uint64) []byte {
	k := make([]byte, 25)
	binary.BigEndian.PutUint64(k[0:], customer)
	binary.BigEndian.PutUint64(k[8:], uint64(at.UnixNano())^(1<<63))
	k[16] = kind
	binary.BigEndian.PutUint64(k[17:], id)
	return k
}

func journeyKeysKey(kind byte, id uint64) []byte {
	return append([]byte{kind}, u64(id)...)
}

// AppendContact stores a new contact under a new ID, which it sets in c,
// and returns once it is durable.
func (s *Store) AppendContact(ctx context.Context, c *Contact) error {
	return s.update(ctx, func(tx *bolt.Tx) error { return appendContact(tx, c) })
}

func appendContact(tx *bolt.Tx, c *Contact) error {
	if err := customerExists(tx, c.CustomerID); err != nil {
		return err
	}
	keys := tx.Bucket(bucketJourneyKeys)
	id, err := keys.NextSequence()
	if err != nil {
		return err
	}
	c.ID = id
	jk := journeyKey(c.CustomerID, c.Start, kindContact, id)
	if err := keys.Put(journeyKeysKey(kindContact, id), jk); err != nil {
		return err
	}
	return putContact(tx, jk, c)
}

// putContact writes c at the journey key jk, its text apart: what a
// customer wrote (a long mail, a chat's transcript) is read only where it
// is shown, and reading a journey's facts, as routing does for every new
// contact, costs the same for mails as for calls. Contacts written before
// schema 6 still hold their text in the journey: moving every text in
// the migration took 20 minutes for a million contacts (longer than
// systemd waits for a start), so each moves when it is next written.
func putContact(tx *bolt.Tx, jk []byte, c *Contact) error {
	texts := tx.Bucket(bucketContactTexts)
	if c.Text == "" {
		if err := texts.Delete(u64(c.ID)); err != nil {
			return err
		}
	} else if err := texts.Put(u64(c.ID), []byte(c.Text)); err != nil {
		return err
	}
	agents := tx.Bucket(bucketAgentJourney)
	if c.Agent != "" {
		if err := agents.Put(jk, []byte(c.Agent)); err != nil {
			return err
		}
	} else if agents.Get(jk) != nil {
		if err := agents.Delete(jk); err != nil {
			return err
		}
	}
	facts := *c
	facts.Text = ""
	return putJSON(tx.Bucket(bucketJourney), jk, &facts)
}

// LastAgent returns the agent who handled the customer's latest contact
// that started before before and had one; "" when none did. It reads one
// key of an index, however long the journey.
func (s *Store) LastAgent(customerID uint64, before time.Time) (string, error) {
	var agent string
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAgentJourney).Cursor()
		k, v := c.Seek(journeyKey(customerID, before, 0, 0))
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		if k != nil && bytes.HasPrefix(k, u64(customerID)) {
			agent = string(v)
		}
		return nil
	})
	return agent, err
}

// readText fills in the text of c, read from the journey without it
// (unless c was written before schema 6 and holds it).
func readText(tx *bolt.Tx, c *Contact) {
	if c.Text == "" {
		c.Text = string(tx.Bucket(bucketContactTexts).Get(u64(c.ID)))
	}
}

// UpdateContact replaces a stored contact; its customer and start time,
// which place it in the journey, stay as first stored.
func (s *Store) UpdateContact(ctx context.Context, c *Contact) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		jk := tx.Bucket(bucketJourneyKeys).Get(journeyKeysKey(kindContact, c.ID))
		if jk == nil {
			return fmt.Errorf("contact %d: %w", c.ID, ErrNotFound)
		}
		var old Contact
		if err := json.Unmarshal(tx.Bucket(bucketJourney).Get(jk), &old); err != nil {
			return err
		}
		c.CustomerID, c.Start = old.CustomerID, old.Start
		return putContact(tx, bytes.Clone(jk), c)
	})
}

// Contact returns the contact with id.
func (s *Store) Contact(id uint64) (*Contact, error) {
	var c Contact
	err := s.db.View(func(tx *bolt.Tx) error {
		jk := tx.Bucket(bucketJourneyKeys).Get(journeyKeysKey(kindContact, id))
		if jk == nil {
			return fmt.Errorf("contact %d: %w", id, ErrNotFound)
		}
		if err := getJSON(tx.Bucket(bucketJourney), jk, &c, "contact", id); err != nil {
			return err
		}
		readText(tx, &c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// ConversationsOf returns the conversation of each of the contacts ids
// that has one, in one read: which of the tasks on the agents' desks
// belong to a conversation.
func (s *Store) ConversationsOf(ids []uint64) (map[uint64]uint64, error) {
	out := map[uint64]uint64{}
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, id := range ids {
			jk := tx.Bucket(bucketJourneyKeys).Get(journeyKeysKey(kindContact, id))
			if jk == nil {
				continue
			}
			var c struct {
				ConversationID uint64 `json:"conversation_id"`
			}
			if err := getJSON(tx.Bucket(bucketJourney), jk, &c, "contact", id); err != nil {
				return err
			}
			if c.ConversationID != 0 {
				out[id] = c.ConversationID
			}
		}
		return nil
	})
	return out, err
}

// AddTouchpoint stores a touchpoint under a new ID, which it sets in t.
func (s *Store) AddTouchpoint(ctx context.Context, t *Touchpoint) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if err := customerExists(tx, t.CustomerID); err != nil {
			return err
		}
		return addTouchpoint(tx, t)
	})
}

func addTouchpoint(tx *bolt.Tx, t *Touchpoint) error {
	keys := tx.Bucket(bucketJourneyKeys)
	id, err := keys.NextSequence()
	if err != nil {
		return err
	}
	t.ID = id
	jk := journeyKey(t.CustomerID, t.At, kindTouchpoint, id)
	if err := keys.Put(journeyKeysKey(kindTouchpoint, id), jk); err != nil {
		return err
	}
	return putJSON(tx.Bucket(bucketJourney), jk, t)
}

// Journey returns up to limit entries of a customer's journey that
// happened before before (all, for the zero time), newest first. The
// next page starts before the oldest entry returned.
func (s *Store) Journey(customerID uint64, before time.Time, limit int) ([]JourneyEntry, error) {
	var out []JourneyEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		var from []byte
		if !before.IsZero() {
			from = journeyKey(customerID, before, 0, 0)
		}
		var err error
		out, err = journeyIn(tx, customerID, from, limit)
		return err
	})
	return out, err
}

// JourneyFacts calls fn with a customer's journey entries that happened
// before before, newest first, until fn returns false or the journey
// ends: for deciding about a new contact, which often needs only the
// newest few. Contacts come without their texts; they are not for
// UpdateContact, which would store the empty text.
func (s *Store) JourneyFacts(customerID uint64, before time.Time, fn func(JourneyEntry) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return walkJourney(tx, customerID, journeyKey(customerID, before, 0, 0), false, fn)
	})
}

// journeyIn reads up to limit (all when negative) journey entries of a
// customer with their texts, newest first, starting below the key from
// (nil: the newest).
func journeyIn(tx *bolt.Tx, customerID uint64, from []byte, limit int) ([]JourneyEntry, error) {
	var out []JourneyEntry
	if limit == 0 {
		return nil, nil
	}
	err := walkJourney(tx, customerID, from, true, func(e JourneyEntry) bool {
		out = append(out, e)
		return len(out) != limit
	})
	return out, err
}

// walkJourney calls fn with a customer's journey entries, newest first,
// starting below the key from (nil: the newest), with the contacts' texts
// when texts is set, until fn returns false.
func walkJourney(tx *bolt.Tx, customerID uint64, from []byte, texts bool, fn func(JourneyEntry) bool) error {
	return journeyBackwards(tx, customerID, from, nil, func(k, v []byte) (bool, error) {
		var e JourneyEntry
		var target any
		switch k[16] {
		case kindContact:
			e.Contact = new(Contact)
			target = e.Contact
		case kindTouchpoint:
			e.Touchpoint = new(Touchpoint)
			target = e.Touchpoint
		default:
			return false, fmt.Errorf("journey of customer %d: unknown entry kind %q", customerID, k[16])
		}
		if err := json.Unmarshal(v, target); err != nil {
			return false, fmt.Errorf("journey of customer %d: %w", customerID, err)
		}
		if e.Contact != nil {
			if texts {
				readText(tx, e.Contact)
			} else {
				e.Contact.Text = "" // one written before schema 6 holds it
			}
		}
		return fn(e), nil
	})
}

// journeyBackwards calls fn with the raw entries (key, value) of
// customerID's journey, newest first: those before from (the newest
// when nil), down to stop (the journey's beginning when nil), until fn
// returns false or an error.
func journeyBackwards(tx *bolt.Tx, customerID uint64, from, stop []byte, fn func(k, v []byte) (bool, error)) error {
	if from == nil {
		from = u64(customerID + 1)
	}
	if stop == nil {
		stop = u64(customerID)
	}
	c := tx.Bucket(bucketJourney).Cursor()
	k, v := c.Seek(from)
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && bytes.Compare(k, stop) >= 0; k, v = c.Prev() {
		if more, err := fn(k, v); !more || err != nil {
			return err
		}
	}
	return nil
}

// ScanContacts calls fn for every contact in journey order: by customer,
// and by time within a customer. It reads in pages of short transactions,
// so a long scan does not hold one read transaction (and the pages it
// pins) for its whole length.
func (s *Store) ScanContacts(fn func(*Contact) error) error {
	const page = 10_000
	var from []byte // the next key to read; nil: the first
	for {
		var batch []*Contact
		done := false
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketJourney).Cursor()
			k, v := c.First()
			if from != nil {
				k, v = c.Seek(from)
			}
			for n := 0; k != nil && n < page; k, v = c.Next() {
				n++
				if k[16] != kindContact {
					continue
				}
				ct := new(Contact)
				if err := json.Unmarshal(v, ct); err != nil {
					return fmt.Errorf("contact at %x: %w", k, err)
				}
				readText(tx, ct)
				batch = append(batch, ct)
			}
			if k == nil {
				done = true
			} else {
				from = bytes.Clone(k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, ct := range batch {
			if err := fn(ct); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

// DropContactTexts empties the text of every contact that started before
// before, deletes the raw message an e-mail contact came from (and that
// of a reply sent before it) and empties the chat messages written before it
// (retention: the facts of a contact stay, what was written goes), a
// page per transaction. It returns how many texts it dropped.
func (s *Store) DropContactTexts(ctx context.Context, before time.Time) (int, error) {
	dropped, err := s.updatePages(ctx, bucketJourney, func(tx *bolt.Tx, entries []entry) (int, error) {
		texts, raw := tx.Bucket(bucketContactTexts), tx.Bucket(bucketMailRaw)
		var drop []*Contact
		var keys [][]byte
		for _, e := range entries {
			if e.k[16] != kindContact {
				continue
			}
			var ct Contact
			if err := json.Unmarshal(e.v, &ct); err != nil {
				return 0, fmt.Errorf("contact at %x: %w", e.k, err)
			}
			if ct.Start.Before(before) && (ct.Text != "" || len(ct.Attachments) > 0 || texts.Get(u64(ct.ID)) != nil || ct.MailID != 0 && raw.Get(u64(ct.MailID)) != nil) {
				drop = append(drop, &ct)
				keys = append(keys, bytes.Clone(e.k))
			}
		}
		for i, ct := range drop {
			// The files' names say what they hold ("Attest Müller.pdf");
			// the files go with the raw message.
			ct.Text, ct.Attachments = "", nil
			if err := putContact(tx, keys[i], ct); err != nil {
				return 0, err
			}
			// The raw message holds the same text; its envelope stays.
			if ct.MailID != 0 {
				if err := raw.Delete(u64(ct.MailID)); err != nil {
					return 0, err
				}
			}
		}
		return len(drop), nil
	})
	if err != nil {
		return dropped, err
	}
	n, err := s.updatePages(ctx, bucketChatMessages, func(tx *bolt.Tx, entries []entry) (int, error) {
		type change struct {
			key []byte
			m   ChatMessage
		}
		var drop []change
		for _, e := range entries {
			var m ChatMessage
			if err := json.Unmarshal(e.v, &m); err != nil {
				return 0, fmt.Errorf("chat message %x: %w", e.k, err)
			}
			if m.At.Before(before) && m.Text != "" {
				m.Text = ""
				drop = append(drop, change{bytes.Clone(e.k), m})
			}
		}
		b := tx.Bucket(bucketChatMessages)
		for _, d := range drop {
			if err := putJSON(b, d.key, &d.m); err != nil {
				return 0, err
			}
		}
		return len(drop), nil
	})
	if err != nil {
		return dropped + n, err
	}
	// Replies queued before before and since sent (or bounced): their
	// bytes (the agent's text, their files) go; what is to be sent still
	// keeps them. Not counted: their contacts' texts are.
	_, err = s.updatePages(ctx, bucketOutbox, func(tx *bolt.Tx, entries []entry) (int, error) {
		type change struct {
			key    []byte
			m      OutboundMail
			inline bool // a record of schema 8, which holds its bytes itself
		}
		var drop []change
		raws := tx.Bucket(bucketOutboxRaw)
		for _, e := range entries {
			var m OutboundMail
			if err := json.Unmarshal(e.v, &m); err != nil {
				return 0, fmt.Errorf("outbox %x: %w", e.k, err)
			}
			if (!m.Sent.IsZero() || !m.Bounced.IsZero()) && m.Queued.Before(before) && (m.Raw != nil || raws.Get(e.k) != nil) {
				inline := m.Raw != nil
				m.Raw = nil
				drop = append(drop, change{bytes.Clone(e.k), m, inline})
			}
		}
		for _, d := range drop {
			if err := raws.Delete(d.key); err != nil {
				return 0, err
			}
			if !d.inline {
				continue
			}
			if err := putJSON(tx.Bucket(bucketOutbox), d.key, &d.m); err != nil {
				return 0, err
			}
		}
		return len(drop), nil
	})
	return dropped + n, err
}

// entry is a key and value of a bucket, valid in its transaction.
type entry struct{ k, v []byte }

// updatePages hands a bucket's entries, in key order, to page a few
// thousand at a time, each in a write transaction of its own, so that a
// walk over a large bucket holds no transaction (and the pages it pins)
// for its whole length. page reads all entries before it writes. It
// returns the sum of what page returned.
func (s *Store) updatePages(ctx context.Context, bucket []byte, page func(*bolt.Tx, []entry) (int, error)) (int, error) {
	const size = 5_000
	total := 0
	var from []byte // the first key of the next page; nil: the first
	for {
		var next []byte
		n := 0
		err := s.update(ctx, func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			k, v := c.First()
			if from != nil {
				k, v = c.Seek(from)
			}
			var entries []entry
			for ; k != nil && len(entries) < size; k, v = c.Next() {
				entries = append(entries, entry{k, v})
			}
			next = bytes.Clone(k)
			var err error
			n, err = page(tx, entries)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if next == nil {
			return total, nil
		}
		from = next
	}
}
