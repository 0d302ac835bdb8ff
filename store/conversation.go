package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PutConversation stores c; a zero ID gets a new one, set in c.
func (s *Store) PutConversation(ctx context.Context, c *Conversation) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketConversations)
		if c.ID == 0 {
			id, err := b.NextSequence()
			if err != nil {
				return err
			}
			c.ID = id
		}
		return putJSON(b, u64(c.ID), c)
	})
}

// Conversation returns the conversation with id.
func (s *Store) Conversation(id uint64) (*Conversation, error) {
	var c Conversation
	err := s.db.View(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketConversations), u64(id), &c, "conversation", id)
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// conversationSkew is how much earlier than its conversation's
// beginning a contact of it may start: times come from the clock as each
// mail is taken in, and a clock set back (NTP, a restored VM) or
// concurrent SMTP sessions can put a conversation's later mail before it.
const conversationSkew = 48 * time.Hour

// ConversationContacts calls fn with a conversation's contacts in
// customerID's journey (the conversation's customer, or the one a
// contact of it stayed with after an unmerge), newest first, until fn
// returns false: the journey read back to shortly before the
// conversation began (conversationSkew), however many other contacts and
// touchpoints came since; the contacts' texts only when texts is set.
// fn runs inside a read transaction: it must not use the Store, whose
// reads inside a read can deadlock with a write that grows the file
// (Thread reads the replies' records too).
func (s *Store) ConversationContacts(customerID uint64, conv *Conversation, texts bool, fn func(*Contact) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return conversationContacts(tx, customerID, conv, texts, fn)
	})
}

// Thread returns a conversation's contacts as ConversationContacts finds
// them, newest first, at most max (every one when 0), and the outbox
// records, without their bytes, of those that are replies, by OutboundID
// (a record gone is left out), from one read.
func (s *Store) Thread(customerID uint64, conv *Conversation, texts bool, max int) ([]*Contact, map[uint64]*OutboundMail, error) {
	var contacts []*Contact
	replies := map[uint64]*OutboundMail{}
	err := s.db.View(func(tx *bolt.Tx) error {
		err := conversationContacts(tx, customerID, conv, texts, func(c *Contact) bool {
			contacts = append(contacts, c)
			return max == 0 || len(contacts) < max
		})
		if err != nil {
			return err
		}
		for _, c := range contacts {
			if c.OutboundID == 0 {
				continue
			}
			m, err := getOutbound(tx, c.OutboundID, false)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			replies[c.OutboundID] = m
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return contacts, replies, nil
}

// conversationContacts decodes contacts only, and reads the texts of the
// conversation's alone.
func conversationContacts(tx *bolt.Tx, customerID uint64, conv *Conversation, texts bool, fn func(*Contact) bool) error {
	var stop []byte // the whole journey, for one whose beginning is not known
	if !conv.Created.IsZero() {
		stop = journeyKey(customerID, conv.Created.Add(-conversationSkew), 0, 0)
	}
	return journeyBackwards(tx, customerID, nil, stop, func(k, v []byte) (bool, error) {
		if k[16] != kindContact {
			return true, nil
		}
		var ct Contact
		if err := json.Unmarshal(v, &ct); err != nil {
			return false, fmt.Errorf("journey of customer %d: %w", customerID, err)
		}
		if ct.ConversationID != conv.ID {
			return true, nil
		}
		if texts {
			readText(tx, &ct)
		} else {
			ct.Text = "" // one written before schema 6 holds it
		}
		return fn(&ct), nil
	})
}
