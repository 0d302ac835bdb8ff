package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// InboundMail is a message as it arrived, before dirigent made sense of
// it: the raw bytes are kept exactly, so parsing can be improved and run
// again, and nothing the sender wrote is lost.
type InboundMail struct {
	ID       uint64    `json:"id"`
	Received time.Time `json:"received"`
	// Source: "smtp", "imap:<mailbox>", or "smarthost" for the delivery
	// report dirigent writes when its smarthost refuses a reply for good.
	Source     string   `json:"source"`
	Remote     string   `json:"remote,omitempty"`
	From       string   `json:"from"` // envelope sender
	Recipients []string `json:"recipients"`
	Size       int      `json:"size"`
	// SourceID makes fetching idempotent: mailbox, UIDVALIDITY and UID of
	// an IMAP message; empty for SMTP.
	SourceID string `json:"source_id,omitempty"`
	// MessageID, for fetched mail, catches a message fetched again under a
	// new UIDVALIDITY.
	MessageID string `json:"message_id,omitempty"`
}

// StoreMail stores a message durably under a new ID, set in m, and marks
// it as waiting to be processed. Only after it returns may the mail be
// acknowledged (SMTP 250, IMAP \Seen). A fetched message already stored
// (the same SourceID, or the same Source and MessageID) is not stored
// again: stored is false and m.ID is the first copy's.
func (s *Store) StoreMail(ctx context.Context, m *InboundMail, raw []byte) (stored bool, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		stored = false
		sources := tx.Bucket(bucketMailSources)
		var keys [][]byte
		if m.SourceID != "" {
			keys = append(keys, []byte("id:"+m.SourceID))
		}
		if m.SourceID != "" && m.MessageID != "" {
			keys = append(keys, []byte("msg:"+m.Source+"|"+m.MessageID))
		}
		for _, k := range keys {
			if v := sources.Get(k); v != nil {
				m.ID = binary.BigEndian.Uint64(v)
				return nil
			}
		}
		if err := putMail(tx, m, raw); err != nil {
			return err
		}
		for _, k := range keys {
			if err := sources.Put(k, u64(m.ID)); err != nil {
				return err
			}
		}
		stored = true
		return nil
	})
	return stored, err
}

// putMail stores a new message under a new ID, set in m, waiting to be
// processed.
func putMail(tx *bolt.Tx, m *InboundMail, raw []byte) error {
	meta := tx.Bucket(bucketMails)
	id, err := meta.NextSequence()
	if err != nil {
		return err
	}
	m.ID, m.Size = id, len(raw)
	if err := putJSON(meta, u64(id), m); err != nil {
		return err
	}
	if err := tx.Bucket(bucketMailRaw).Put(u64(id), raw); err != nil {
		return err
	}
	return tx.Bucket(bucketMailPending).Put(u64(id), nil)
}

// FetchState is how far a fetched mailbox has been read.
type FetchState struct {
	UIDValidity uint32 `json:"uid_validity"`
	LastUID     uint32 `json:"last_uid"`
}

// FetchState returns a mailbox's state; the zero state when new.
func (s *Store) FetchState(mailbox string) (FetchState, error) {
	var st FetchState
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketFetchState).Get([]byte(mailbox)); v != nil {
			return json.Unmarshal(v, &st)
		}
		return nil
	})
	return st, err
}

// SetFetchState records how far a mailbox has been read.
func (s *Store) SetFetchState(ctx context.Context, mailbox string, st FetchState) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketFetchState), []byte(mailbox), st)
	})
}

// Mail returns a stored message and its raw bytes.
func (s *Store) Mail(id uint64) (*InboundMail, []byte, error) {
	var m InboundMail
	var raw []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := getJSON(tx.Bucket(bucketMails), u64(id), &m, "mail", id); err != nil {
			return err
		}
		raw = append([]byte(nil), tx.Bucket(bucketMailRaw).Get(u64(id))...)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return &m, raw, nil
}

// PendingMails returns the IDs of stored messages not yet processed, in
// arrival order: after a restart they are processed first.
func (s *Store) PendingMails() ([]uint64, error) {
	var ids []uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMailPending).ForEach(func(k, _ []byte) error {
			ids = append(ids, binary.BigEndian.Uint64(k))
			return nil
		})
	})
	return ids, err
}

// MailProcessed marks a message as processed.
func (s *Store) MailProcessed(ctx context.Context, id uint64) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMails).Get(u64(id)) == nil {
			return fmt.Errorf("mail %d: %w", id, ErrNotFound)
		}
		return tx.Bucket(bucketMailPending).Delete(u64(id))
	})
}

// MailCount is how many messages the store holds.
func (s *Store) MailCount() (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketMails).Stats().KeyN
		return nil
	})
	return n, err
}

// InboundRecord is what processing made of a stored message.
type InboundRecord struct {
	MailID  uint64
	Contact *Contact
	// Conversation is continued when its ID is set, else created (its ID
	// and, when empty, its Tag "DG-<id>" are set).
	Conversation *Conversation
	// MessageIDs thread later replies into the conversation.
	MessageIDs []string
	// OpenTask is the open-task index entry of the task this contact
	// becomes, given the contact's ID; nil when it becomes none.
	OpenTask func(contactID uint64) ([]byte, error)
	// BouncedOutboundID is the outbox message this one, a delivery
	// report, says did not arrive, for BounceReason; 0 for any other
	// message.
	BouncedOutboundID uint64
	BounceReason      string
	// Identity, when set, becomes the contact's customer's in the same
	// transaction: the message answers a reply an agent sent to this
	// address (OutboundMail.ToIdentity). Another customer's by then
	// leaves the message waiting (ErrConflict), to be processed again.
	Identity string
}

// RecordedMail is what recording one message gave.
type RecordedMail struct {
	ContactID uint64
	// Existed: the message had been recorded before; ContactID is the
	// first contact's.
	Existed bool
	// Err is why this message alone was not recorded (its conversation is
	// gone); it stays waiting to be processed.
	Err error
}

// RecordInboundMails stores what processing made of messages, in one
// transaction: for each, the contact, the conversation, the thread index,
// the task's entry in the open-task index, and that the message is
// processed. One commit for many messages is what lets processing keep up
// with intake. Records may share a new Conversation (a reply to a message
// earlier in the same call): the first creates it. Recording a message
// again changes nothing and gives the first contact's ID with Existed
// set, so a crash between processing and its acknowledgement never makes
// two contacts of one mail.
func (s *Store) RecordInboundMails(ctx context.Context, recs []InboundRecord) ([]RecordedMail, error) {
	// The transaction function may run more than once: the conversations
	// it creates start from their state before the first run every time.
	created := map[*Conversation]string{} // → its tag as given
	for _, r := range recs {
		if r.Conversation.ID == 0 {
			created[r.Conversation] = r.Conversation.Tag
		}
	}
	out := make([]RecordedMail, len(recs))
	err := s.update(ctx, func(tx *bolt.Tx) error {
		for conv, tag := range created {
			conv.ID, conv.Tag = 0, tag
		}
		for i := range recs {
			var err error
			if out[i], err = recordInboundMail(tx, &recs[i]); err != nil {
				return fmt.Errorf("mail %d: %w", recs[i].MailID, err)
			}
		}
		return nil
	})
	return out, err
}

func recordInboundMail(tx *bolt.Tx, in *InboundRecord) (RecordedMail, error) {
	mc := tx.Bucket(bucketMailContacts)
	if v := mc.Get(u64(in.MailID)); v != nil {
		return RecordedMail{ContactID: binary.BigEndian.Uint64(v), Existed: true}, tx.Bucket(bucketMailPending).Delete(u64(in.MailID))
	}
	if err := customerExists(tx, in.Contact.CustomerID); err != nil {
		// Erased, or merged into another, since the message was
		// identified; nothing written for it: it stays pending, and is
		// processed again for whoever its sender is now.
		return RecordedMail{Err: err}, nil
	}
	convs := tx.Bucket(bucketConversations)
	conv := in.Conversation
	if conv.ID != 0 && convs.Get(u64(conv.ID)) == nil {
		// Erased since it was looked up; nothing written for this one.
		return RecordedMail{Err: fmt.Errorf("conversation %d: %w", conv.ID, ErrNotFound)}, nil
	}
	if in.Identity != "" {
		switch _, err := addIdentity(tx, in.Identity, in.Contact.CustomerID); {
		case errors.Is(err, ErrConflict):
			return RecordedMail{Err: err}, nil // nothing written yet
		case err != nil:
			return RecordedMail{}, err
		}
	}
	if conv.ID == 0 {
		id, err := convs.NextSequence()
		if err != nil {
			return RecordedMail{}, err
		}
		conv.ID = id
		if conv.Tag == "" {
			conv.Tag = fmt.Sprintf("DG-%d", id)
		}
	}
	var bounced *OutboundMail
	if id := in.BouncedOutboundID; id != 0 {
		var m OutboundMail
		switch err := getJSON(tx.Bucket(bucketOutbox), u64(id), &m, "outbound mail", id); {
		case err == nil:
			bounced = &m
		case !errors.Is(err, ErrNotFound):
			// A record that cannot be read holds up this message alone:
			// nothing of it is written yet.
			return RecordedMail{Err: err}, nil
		}
		// Not found cannot be while its customer is (erasure takes
		// both); were it so, the report still becomes a contact.
	}
	if err := putJSON(convs, u64(conv.ID), conv); err != nil {
		return RecordedMail{}, err
	}
	for _, mid := range in.MessageIDs {
		if mid != "" {
			if err := tx.Bucket(bucketMessageIDs).Put([]byte(mid), u64(conv.ID)); err != nil {
				return RecordedMail{}, err
			}
		}
	}
	in.Contact.ConversationID = conv.ID
	in.Contact.MailID = in.MailID
	if err := appendContact(tx, in.Contact); err != nil {
		return RecordedMail{}, err
	}
	if bounced != nil {
		if err := markBounced(tx, bounced, in.Contact.Start, in.BounceReason); err != nil {
			return RecordedMail{}, err
		}
	}
	if in.OpenTask != nil {
		p, err := in.OpenTask(in.Contact.ID)
		if err != nil {
			return RecordedMail{}, err
		}
		if err := tx.Bucket(bucketOpenTasks).Put(u64(in.Contact.ID), p); err != nil {
			return RecordedMail{}, err
		}
	}
	if err := mc.Put(u64(in.MailID), u64(in.Contact.ID)); err != nil {
		return RecordedMail{}, err
	}
	return RecordedMail{ContactID: in.Contact.ID}, tx.Bucket(bucketMailPending).Delete(u64(in.MailID))
}

// ConversationByMessageID returns the conversation a Message-ID belongs to.
func (s *Store) ConversationByMessageID(messageID string) (*Conversation, error) {
	var c Conversation
	err := s.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketMessageIDs).Get([]byte(messageID))
		if id == nil {
			return fmt.Errorf("message %q: %w", messageID, ErrNotFound)
		}
		return getJSON(tx.Bucket(bucketConversations), id, &c, "conversation", binary.BigEndian.Uint64(id))
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}
