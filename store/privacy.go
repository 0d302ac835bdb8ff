package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// CustomerExport is everything the store holds about one customer (GDPR
// Art. 15 and 20).
type CustomerExport struct {
	Customer      Customer       `json:"customer"`
	Identities    []string       `json:"identities"`
	Journey       []JourneyEntry `json:"journey"` // newest first
	Conversations []Conversation `json:"conversations"`
	Chats         []ChatExport   `json:"chats,omitempty"`
	// Merges are the records of merges into or of the customer: they
	// hold the merged customers as they were.
	Merges []Merge `json:"merges,omitempty"`
}

// ChatExport is one chat session with its messages.
type ChatExport struct {
	Session  ChatSession   `json:"session"`
	Messages []ChatMessage `json:"messages"`
}

// ExportCustomer gathers everything about a customer from one consistent
// read.
func (s *Store) ExportCustomer(id uint64) (*CustomerExport, error) {
	var out CustomerExport
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := getJSON(tx.Bucket(bucketCustomers), u64(id), &out.Customer, "customer", id); err != nil {
			return err
		}
		prefix := u64(id)
		c := tx.Bucket(bucketCustomerIDs).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			out.Identities = append(out.Identities, string(k[8:]))
		}
		merges, err := readMerges(tx)
		if err != nil {
			return err
		}
		ids := mergedInto(merges, id)
		for _, m := range merges {
			if m.names(ids) { // erasure deletes them
				out.Merges = append(out.Merges, m)
			}
		}
		if out.Journey, err = journeyIn(tx, id, nil, -1); err != nil {
			return err
		}
		if err := tx.Bucket(bucketConversations).ForEach(func(k, v []byte) error {
			var conv Conversation
			if err := json.Unmarshal(v, &conv); err != nil {
				return fmt.Errorf("conversation %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if slices.Contains(ids, conv.CustomerID) {
				out.Conversations = append(out.Conversations, conv)
			}
			return nil
		}); err != nil {
			return err
		}
		sessions, err := customerChatSessions(tx, ids)
		if err != nil {
			return err
		}
		for _, cs := range sessions {
			msgs, err := chatMessagesIn(tx, cs.ID, 0)
			if err != nil {
				return err
			}
			out.Chats = append(out.Chats, ChatExport{Session: cs, Messages: msgs})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ErasedCustomer counts what EraseCustomer removed.
type ErasedCustomer struct {
	// Merged are the customers merged into the erased one earlier: their
	// open tasks and chats, which still name them, went too.
	Merged []uint64 `json:"merged,omitempty"`

	Identities    int `json:"identities"`
	JourneyItems  int `json:"journey_entries"`
	Conversations int `json:"conversations"`
	Mails         int `json:"mails"`
	OpenTasks     int `json:"open_tasks"`
	ChatSessions  int `json:"chat_sessions"`
}

// deleteMail removes a stored message entirely. Its source keys stay: they
// hold no personal data and keep a fetched copy from coming back.
func deleteMail(tx *bolt.Tx, id uint64) error {
	for _, b := range [][]byte{bucketMails, bucketMailRaw, bucketMailPending, bucketMailContacts} {
		if err := tx.Bucket(b).Delete(u64(id)); err != nil {
			return err
		}
	}
	return nil
}

// EraseCustomer removes a customer and everything that names them, in one
// transaction (GDPR Art. 17): the record, its CRM id, identities, contacts,
// touchpoints, conversations, chat sessions with their messages, merge
// records naming them, and the open tasks taskCustomer says are theirs;
// chat sessions and open tasks of customers merged into them too. The
// router journal keeps task numbers and times only, no customer, so
// nothing there identifies them once the contacts are gone.
func (s *Store) EraseCustomer(ctx context.Context, id uint64, taskCustomer func(payload []byte) uint64) (ErasedCustomer, error) {
	var n ErasedCustomer
	err := s.update(ctx, func(tx *bolt.Tx) error {
		n = ErasedCustomer{}
		var c Customer
		if err := getJSON(tx.Bucket(bucketCustomers), u64(id), &c, "customer", id); err != nil {
			return err
		}
		merges, err := readMerges(tx)
		if err != nil {
			return err
		}
		ids := mergedInto(merges, id)
		if len(ids) > 1 {
			n.Merged = ids[1:]
		}
		if err := deleteCustomerRecord(tx, &c); err != nil {
			return err
		}
		prefix := u64(id)
		if err := deletePrefix(tx.Bucket(bucketCustomerIDs), prefix, func(k, _ []byte) error {
			n.Identities++
			return tx.Bucket(bucketIdentities).Delete(k[8:])
		}); err != nil {
			return err
		}
		contacts := map[uint64]bool{}
		if err := deletePrefix(tx.Bucket(bucketJourney), prefix, func(k, v []byte) error {
			n.JourneyItems++
			if k[16] == kindContact {
				contacts[binary.BigEndian.Uint64(k[17:])] = true
				if err := tx.Bucket(bucketContactTexts).Delete(k[17:]); err != nil {
					return err
				}
				var c Contact
				if err := json.Unmarshal(v, &c); err != nil {
					return err
				}
				if c.MailID != 0 {
					n.Mails++
					if err := deleteMail(tx, c.MailID); err != nil {
						return err
					}
				}
			}
			return tx.Bucket(bucketJourneyKeys).Delete(k[16:])
		}); err != nil {
			return err
		}
		if err := deletePrefix(tx.Bucket(bucketAgentJourney), prefix, nil); err != nil {
			return err
		}
		erased := map[uint64]bool{}
		if err := deleteWhere(tx.Bucket(bucketConversations), func(v []byte) (bool, error) {
			var conv Conversation
			err := json.Unmarshal(v, &conv)
			if err == nil && slices.Contains(ids, conv.CustomerID) {
				erased[conv.ID] = true
				return true, nil
			}
			return false, err
		}, &n.Conversations); err != nil {
			return err
		}
		var threads int
		if err := deleteWhere(tx.Bucket(bucketMessageIDs), func(v []byte) (bool, error) {
			return erased[binary.BigEndian.Uint64(v)], nil
		}, &threads); err != nil {
			return err
		}
		// Replies to the customer, sent or waiting.
		due := tx.Bucket(bucketOutboxDue)
		if err := deleteWhere(tx.Bucket(bucketOutbox), func(v []byte) (bool, error) {
			var m OutboundMail
			if err := json.Unmarshal(v, &m); err != nil {
				return false, err
			}
			if !contacts[m.ContactID] {
				return false, nil
			}
			if err := tx.Bucket(bucketOutboxRaw).Delete(u64(m.ID)); err != nil {
				return false, err
			}
			return true, due.Delete(u64(m.ID))
		}, &n.Mails); err != nil {
			return err
		}
		if n.ChatSessions, err = eraseCustomerChats(tx, ids); err != nil {
			return err
		}
		// Merge records hold copies of the customers they joined.
		for _, m := range merges {
			if m.names(ids) {
				if err := tx.Bucket(bucketMerges).Delete(u64(m.ID)); err != nil {
					return err
				}
			}
		}
		return deleteWhere(tx.Bucket(bucketOpenTasks), func(v []byte) (bool, error) {
			return slices.Contains(ids, taskCustomer(v)), nil
		}, &n.OpenTasks)
	})
	return n, err
}

// deletePrefix deletes every key of b starting with prefix, calling each
// (unless nil) first.
func deletePrefix(b *bolt.Bucket, prefix []byte, each func(k, v []byte) error) error {
	var keys [][]byte
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if each != nil {
			if err := each(k, v); err != nil {
				return err
			}
		}
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// deleteWhere deletes the entries of b whose value matches, counting them.
func deleteWhere(b *bolt.Bucket, match func(v []byte) (bool, error), count *int) error {
	var keys [][]byte
	if err := b.ForEach(func(k, v []byte) error {
		ok, err := match(v)
		if ok {
			keys = append(keys, bytes.Clone(k))
		}
		return err
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	*count += len(keys)
	return nil
}
