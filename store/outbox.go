package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OutboundMail is a message waiting in, or sent from, the outbox.
type OutboundMail struct {
	ID             uint64    `json:"id"`
	ConversationID uint64    `json:"conversation_id"`
	ContactID      uint64    `json:"contact_id"`
	From           string    `json:"from"`
	To             string    `json:"to"`
	MessageID      string    `json:"message_id"`
	Raw            []byte    `json:"raw"` // the whole message, as it will be sent
	Queued         time.Time `json:"queued"`
	Attempts       int       `json:"attempts"`
	NextAttempt    time.Time `json:"next_attempt"`
	LastError      string    `json:"last_error,omitempty"`
	Sent           time.Time `json:"sent,omitzero"`
}

// QueueOutbound stores a message in the outbox together with its contact
// in the customer's journey, and threads its Message-ID into the
// conversation, in one transaction; the IDs are set in m and c (and
// c.OutboundID).
func (s *Store) QueueOutbound(ctx context.Context, m *OutboundMail, c *Contact) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		out := tx.Bucket(bucketOutbox)
		id, err := out.NextSequence()
		if err != nil {
			return err
		}
		c.OutboundID = id
		if err := appendContact(tx, c); err != nil {
			return err
		}
		m.ID, m.ContactID = id, c.ID
		if err := putJSON(out, u64(id), m); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOutboxDue).Put(u64(id), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketMessageIDs).Put([]byte(m.MessageID), u64(m.ConversationID))
	})
}

// DueOutbound returns the outbox messages not yet sent whose next attempt
// is due at now.
func (s *Store) DueOutbound(now time.Time) ([]*OutboundMail, error) {
	var out []*OutboundMail
	err := s.db.View(func(tx *bolt.Tx) error {
		box := tx.Bucket(bucketOutbox)
		return tx.Bucket(bucketOutboxDue).ForEach(func(k, _ []byte) error {
			var m OutboundMail
			if err := json.Unmarshal(box.Get(k), &m); err != nil {
				return fmt.Errorf("outbox %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if !m.NextAttempt.After(now) {
				out = append(out, &m)
			}
			return nil
		})
	})
	return out, err
}

// OutboundAttempt records the result of a delivery attempt: sent (err
// nil), or failed with the time of the next attempt.
func (s *Store) OutboundAttempt(ctx context.Context, id uint64, at time.Time, sendErr error, next time.Time) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		box := tx.Bucket(bucketOutbox)
		var m OutboundMail
		if err := getJSON(box, u64(id), &m, "outbound mail", id); err != nil {
			return err
		}
		m.Attempts++
		if sendErr == nil {
			m.Sent, m.LastError = at, ""
			if err := tx.Bucket(bucketOutboxDue).Delete(u64(id)); err != nil {
				return err
			}
		} else {
			m.LastError, m.NextAttempt = sendErr.Error(), next
		}
		return putJSON(box, u64(id), &m)
	})
}

// OutboundMessage returns one message of the outbox.
func (s *Store) OutboundMessage(id uint64) (*OutboundMail, error) {
	var m OutboundMail
	err := s.db.View(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketOutbox), u64(id), &m, "outbound mail", id)
	})
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// OutboxDepth is how many messages wait to be sent.
func (s *Store) OutboxDepth() (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketOutboxDue).Stats().KeyN
		return nil
	})
	return n, err
}
