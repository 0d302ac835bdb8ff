package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OutboundMail is a message waiting in, or sent from, the outbox.
type OutboundMail struct {
	ID             uint64 `json:"id"`
	ConversationID uint64 `json:"conversation_id"`
	ContactID      uint64 `json:"contact_id"`
	From           string `json:"from"`
	To             string `json:"to"`
	MessageID      string `json:"message_id"`
	// Raw is the whole message, as it will be sent. It is kept apart from
	// the record (bucketOutboxRaw): a reply with files is megabytes, and
	// the sender reads the records of the waiting ones every few seconds.
	Raw         []byte    `json:"raw,omitempty"`
	Queued      time.Time `json:"queued"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
	Sent        time.Time `json:"sent,omitzero"`
	// GaveUp: someone stopped the tries (GiveUpOutbound); the bytes are
	// gone.
	GaveUp   time.Time `json:"gave_up,omitzero"`
	GaveUpBy string    `json:"gave_up_by,omitempty"`
	// Bounced: the reply did not reach its recipient, and will not; a
	// delivery report said so (or the smarthost refused it for good, or
	// it was not sent in its queue time), for the reason given. A reply
	// that was sent may bounce later.
	Bounced      time.Time `json:"bounced,omitzero"`
	BounceReason string    `json:"bounce_reason,omitempty"`
	// ToIdentity: To is an address an agent gave (for this reply or one
	// before it in the conversation), not the customer's mail, and this
	// identity. QueueOutbound refuses it with ErrConflict when it is
	// another customer's; an unknown one becomes the reply's customer's
	// only when a person's mail from it answers this reply
	// (InboundRecord.Identity), which proves it theirs: a typing error
	// files no stranger's mail under the customer. UnlinkIdentity clears
	// it.
	ToIdentity string `json:"to_identity,omitempty"`
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
		if m.ToIdentity != "" {
			if _, err := identityOf(tx, m.ToIdentity, c.CustomerID); err != nil {
				return err
			}
		}
		if err := appendContact(tx, c); err != nil {
			return err
		}
		m.ID, m.ContactID = id, c.ID
		if err := tx.Bucket(bucketOutboxRaw).Put(u64(id), m.Raw); err != nil {
			return err
		}
		record := *m
		record.Raw = nil
		if err := putJSON(out, u64(id), &record); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOutboxDue).Put(u64(id), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketMessageIDs).Put([]byte(m.MessageID), u64(m.ConversationID))
	})
}

// DueOutbound returns the outbox messages not yet sent whose next attempt
// is due at now, without their bytes (OutboundMessage reads them, one at
// a time, as each is sent), unless a record of schema 8 holds them.
//
// A record that cannot be read is left out and named in the error; the
// others are returned all the same, so that one holds up none.
func (s *Store) DueOutbound(now time.Time) ([]*OutboundMail, error) {
	var (
		out []*OutboundMail
		bad []error
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		box := tx.Bucket(bucketOutbox)
		return tx.Bucket(bucketOutboxDue).ForEach(func(k, _ []byte) error {
			var m OutboundMail
			if err := json.Unmarshal(box.Get(k), &m); err != nil {
				bad = append(bad, fmt.Errorf("outbox %d: %w", binary.BigEndian.Uint64(k), err))
				return nil
			}
			if !m.NextAttempt.After(now) {
				out = append(out, &m)
			}
			return nil
		})
	})
	return out, cmp.Or(err, errors.Join(bad...))
}

// OldestOutbound is when the reply waiting longest in the outbox was
// queued; zero when none waits. Replies get their IDs in the order they
// are queued, so that is the first waiting one (that can be read): a
// scrape of the gauge decodes one record, not the queue.
func (s *Store) OldestOutbound() (time.Time, error) {
	var oldest time.Time
	err := s.db.View(func(tx *bolt.Tx) error {
		box := tx.Bucket(bucketOutbox)
		c := tx.Bucket(bucketOutboxDue).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			var m OutboundMail
			if json.Unmarshal(box.Get(k), &m) == nil {
				oldest = m.Queued
				return nil
			}
		}
		return nil
	})
	return oldest, err
}

// readOutboundRaw sets m.Raw, unless the record held it (before schema 9).
func readOutboundRaw(tx *bolt.Tx, m *OutboundMail) {
	if m.Raw == nil {
		m.Raw = bytes.Clone(tx.Bucket(bucketOutboxRaw).Get(u64(m.ID)))
	}
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

// RefuseOutbound records that the smarthost refused a reply for good
// (reason), or that it is not tried any longer: it is not tried again, and
// the delivery report
// written for it (report, raw) is stored, to be processed as a mail that
// came back, in the same transaction.
// ErrConflict when it was no longer waiting: an agent stopped it, or its
// customer was erased, meanwhile.
func (s *Store) RefuseOutbound(ctx context.Context, id uint64, at time.Time, reason string, report *InboundMail, raw []byte) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketOutboxDue).Get(u64(id)) == nil {
			return fmt.Errorf("%w: reply %d is no longer waiting to be sent", ErrConflict, id)
		}
		var m OutboundMail
		if err := getJSON(tx.Bucket(bucketOutbox), u64(id), &m, "outbound mail", id); err != nil {
			return err
		}
		m.Attempts++
		m.LastError = reason
		if err := markBounced(tx, &m, at, reason); err != nil {
			return err
		}
		return putMail(tx, report, raw)
	})
}

// markBounced marks a reply bounced, unless it was already: it leaves
// the queue; its bytes stay until retention drops them, as a sent
// reply's. The record is written back.
func markBounced(tx *bolt.Tx, m *OutboundMail, at time.Time, reason string) error {
	if m.Bounced.IsZero() {
		m.Bounced, m.BounceReason = at, reason
	}
	if err := tx.Bucket(bucketOutboxDue).Delete(u64(m.ID)); err != nil {
		return err
	}
	return putJSON(tx.Bucket(bucketOutbox), u64(m.ID), m)
}

// GiveUpOutbound stops the tries to send a reply the smarthost keeps
// refusing (a wrong address): it leaves the queue, its bytes (the
// message with its files) go, and who gave it up when stays. ErrConflict once it was
// sent; giving up again changes nothing.
func (s *Store) GiveUpOutbound(ctx context.Context, id uint64, at time.Time, by string) (*OutboundMail, error) {
	var m OutboundMail
	err := s.update(ctx, func(tx *bolt.Tx) error {
		box := tx.Bucket(bucketOutbox)
		if err := getJSON(box, u64(id), &m, "outbound mail", id); err != nil {
			return err
		}
		switch {
		case !m.Sent.IsZero():
			return fmt.Errorf("%w: reply %d was sent %s", ErrConflict, id, m.Sent.Format(time.RFC3339))
		case !m.GaveUp.IsZero(), !m.Bounced.IsZero():
			return nil // stopped already
		}
		m.Raw, m.GaveUp, m.GaveUpBy = nil, at, by
		if err := tx.Bucket(bucketOutboxDue).Delete(u64(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOutboxRaw).Delete(u64(id)); err != nil {
			return err
		}
		return putJSON(box, u64(id), &m)
	})
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// OutboundStatus returns one message of the outbox without its bytes:
// how its delivery stands.
func (s *Store) OutboundStatus(id uint64) (*OutboundMail, error) {
	return s.outbound(id, false)
}

// OutboundMessage returns one message of the outbox, with its bytes.
func (s *Store) OutboundMessage(id uint64) (*OutboundMail, error) {
	return s.outbound(id, true)
}

func (s *Store) outbound(id uint64, withRaw bool) (m *OutboundMail, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		m, err = getOutbound(tx, id, withRaw)
		return err
	})
	return m, err
}

func getOutbound(tx *bolt.Tx, id uint64, withRaw bool) (*OutboundMail, error) {
	var m OutboundMail
	if err := getJSON(tx.Bucket(bucketOutbox), u64(id), &m, "outbound mail", id); err != nil {
		return nil, err
	}
	if withRaw {
		readOutboundRaw(tx, &m)
	} else {
		m.Raw = nil // a record of schema 8 held them
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
