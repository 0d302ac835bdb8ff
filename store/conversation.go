package store

import (
	"context"

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

// ConversationContacts calls fn with a conversation's contacts, newest
// first, until fn returns false: its customer's journey read back to when
// the conversation began, however many other contacts and touchpoints
// came since; the contacts' texts only when texts is set.
func (s *Store) ConversationContacts(conv *Conversation, texts bool, fn func(*Contact) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return walkJourney(tx, conv.CustomerID, nil, texts, func(e JourneyEntry) bool {
			if e.At().Before(conv.Created) {
				return false
			}
			return e.Contact == nil || e.Contact.ConversationID != conv.ID || fn(e.Contact)
		})
	})
}
