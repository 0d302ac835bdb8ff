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

// ErrChatEnded is returned for a change to a chat session that has ended.
var ErrChatEnded = errors.New("chat session has ended")

// ChatSession is one chat conversation of the message channel, from the
// web widget or by SIP MESSAGE: who the customer is, where it is routed,
// and how far its transcript goes. Its messages are kept apart, under
// the session, so that appending one does not rewrite the others.
type ChatSession struct {
	ID             uint64 `json:"id"`
	ConversationID uint64 `json:"conversation_id"`
	CustomerID     uint64 `json:"customer_id"`
	// ContactID is the contact (and task) the first customer message
	// made; 0 before it.
	ContactID uint64 `json:"contact_id,omitempty"`
	Entrance  string `json:"entrance"` // "web" or "sip"
	// Peer is, for a SIP MESSAGE session, the customer's identity (a SIP
	// URI or phone number), ReplyTo where answers go (the SIP URI of the
	// peer's latest message; empty: Peer).
	Peer    string `json:"peer,omitempty"`
	ReplyTo string `json:"reply_to,omitempty"`
	Queue   string `json:"queue"`
	Intent  string `json:"intent,omitempty"`
	Lang    string `json:"lang"`
	// What the customer told about themselves in the widget.
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
	// TranscriptTo is where the transcript is mailed when the chat ends.
	TranscriptTo string `json:"transcript_to,omitempty"`
	Agent        string `json:"agent,omitempty"`
	Status       string `json:"status"` // "open" or "ended"
	// Seq is the latest message's number, read from the messages: a
	// message is stored without rewriting its session.
	Seq     uint64    `json:"seq"`
	Created time.Time `json:"created"`
	// Updated is the time of the latest change of the session's state
	// (not of every message).
	Updated time.Time `json:"updated"`
	Ended   time.Time `json:"ended,omitzero"`
}

// ChatMessage is one line of a chat's transcript.
type ChatMessage struct {
	Seq   uint64    `json:"seq"`
	At    time.Time `json:"at"`
	From  string    `json:"from"` // "customer", "agent" or "system"
	Agent string    `json:"agent,omitempty"`
	Text  string    `json:"text"`
	// Ref is the sender's own id of the message: a message sent again
	// after a lost acknowledgement is stored once.
	Ref string `json:"ref,omitempty"`
}

// ChatAppend is one message for AppendChatMessage.
type ChatAppend struct {
	SessionID uint64
	Message   *ChatMessage
	// Contact, when the session has none yet, is stored as the session's
	// contact (its ConversationID set), and OpenTask, given the contact's
	// ID, is the task's entry in the open-task index.
	Contact  *Contact
	OpenTask func(contactID uint64) ([]byte, error)
	// Update, when set, changes the session in the same transaction.
	Update func(*ChatSession)
}

func chatMessageKey(session, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, session)
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

// CreateChatSession stores a new session, set in s, with its new
// conversation, set in conv, in one transaction. tokenHash (the SHA-256
// of the browser's session token) finds it again on reconnect; a SIP
// session is found by its Peer while it is open. A customer merged into
// another since it was identified is replaced by the kept one (set in cs
// and conv); one erased meanwhile is ErrNotFound.
func (s *Store) CreateChatSession(ctx context.Context, cs *ChatSession, conv *Conversation, tokenHash []byte) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		customer, err := customerNow(tx, cs.CustomerID)
		if err != nil {
			return err
		}
		cs.CustomerID, conv.CustomerID = customer, customer
		convs := tx.Bucket(bucketConversations)
		cid, err := convs.NextSequence()
		if err != nil {
			return err
		}
		conv.ID = cid
		if err := putJSON(convs, u64(cid), conv); err != nil {
			return err
		}
		sessions := tx.Bucket(bucketChatSessions)
		id, err := sessions.NextSequence()
		if err != nil {
			return err
		}
		cs.ID, cs.ConversationID, cs.Status = id, cid, "open"
		if err := putJSON(sessions, u64(id), cs); err != nil {
			return err
		}
		if err := tx.Bucket(bucketChatOpen).Put(u64(id), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketChatConvs).Put(u64(cid), u64(id)); err != nil {
			return err
		}
		if len(tokenHash) > 0 {
			if err := tx.Bucket(bucketChatTokens).Put(tokenHash, u64(id)); err != nil {
				return err
			}
		}
		if cs.Peer != "" {
			return tx.Bucket(bucketChatPeers).Put([]byte(cs.Peer), u64(id))
		}
		return nil
	})
}

// ChatSession returns the session with id.
func (s *Store) ChatSession(id uint64) (*ChatSession, error) {
	var cs ChatSession
	err := s.db.View(func(tx *bolt.Tx) error {
		return getChatSession(tx, id, &cs)
	})
	if err != nil {
		return nil, err
	}
	return &cs, nil
}

// ChatSessionByToken returns the session a browser's token (its SHA-256)
// belongs to.
func (s *Store) ChatSessionByToken(tokenHash []byte) (*ChatSession, error) {
	return s.chatSessionBy(bucketChatTokens, tokenHash, "token")
}

// ChatSessionByConversation returns the session of a conversation.
func (s *Store) ChatSessionByConversation(conversationID uint64) (*ChatSession, error) {
	return s.chatSessionBy(bucketChatConvs, u64(conversationID), fmt.Sprintf("conversation %d", conversationID))
}

// ChatSessionByPeer returns the open SIP MESSAGE session of a peer.
func (s *Store) ChatSessionByPeer(peer string) (*ChatSession, error) {
	return s.chatSessionBy(bucketChatPeers, []byte(peer), "peer "+peer)
}

func (s *Store) chatSessionBy(bucket, key []byte, what string) (*ChatSession, error) {
	var cs ChatSession
	err := s.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucket).Get(key)
		if id == nil {
			return fmt.Errorf("chat session of %s: %w", what, ErrNotFound)
		}
		return getChatSession(tx, binary.BigEndian.Uint64(id), &cs)
	})
	if err != nil {
		return nil, err
	}
	return &cs, nil
}

// getChatSession reads a session with its latest message number.
func getChatSession(tx *bolt.Tx, id uint64, cs *ChatSession) error {
	if err := getJSON(tx.Bucket(bucketChatSessions), u64(id), cs, "chat session", id); err != nil {
		return err
	}
	cs.Seq = lastChatSeq(tx.Bucket(bucketChatMessages).Cursor(), id)
	return nil
}

// lastChatSeq is the number of a session's latest message, 0 for none;
// it leaves c there.
func lastChatSeq(c *bolt.Cursor, session uint64) uint64 {
	k, _ := c.Seek(chatMessageKey(session+1, 0))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	if len(k) != 16 || binary.BigEndian.Uint64(k) != session {
		return 0
	}
	return binary.BigEndian.Uint64(k[8:])
}

// OpenChatSessions returns every session that has not ended: after a
// restart their customers may reconnect.
func (s *Store) OpenChatSessions() ([]*ChatSession, error) {
	var out []*ChatSession
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketChatOpen).ForEach(func(k, _ []byte) error {
			var cs ChatSession
			if err := getChatSession(tx, binary.BigEndian.Uint64(k), &cs); err != nil {
				return err
			}
			out = append(out, &cs)
			return nil
		})
	})
	return out, err
}

// AppendChatMessage appends a message to an open session's transcript
// under the next number, set in the message, and returns the session as
// stored. Only after it returns may the message be acknowledged to its
// sender. A message whose Ref the session already has is not stored
// again: dup is true and the message is the stored one.
func (s *Store) AppendChatMessage(ctx context.Context, in ChatAppend) (cs *ChatSession, dup bool, err error) {
	err = s.update(ctx, func(tx *bolt.Tx) error {
		cs, dup = &ChatSession{}, false
		if err := getChatSession(tx, in.SessionID, cs); err != nil {
			return err
		}
		if cs.Status != "open" {
			return fmt.Errorf("chat session %d: %w", in.SessionID, ErrChatEnded)
		}
		msgs := tx.Bucket(bucketChatMessages)
		if in.Message.Ref != "" {
			if m, ok := recentRef(msgs.Cursor(), in.SessionID, in.Message.Ref); ok {
				*in.Message, dup = m, true
				return nil
			}
		}
		cs.Seq++
		in.Message.Seq = cs.Seq
		if err := putJSON(msgs, chatMessageKey(cs.ID, cs.Seq), in.Message); err != nil {
			return err
		}
		// Only a change of state rewrites the session: most messages
		// touch the messages alone, which keeps each commit small.
		changed := false
		if in.Contact != nil && cs.ContactID == 0 {
			// The session's customer may have been merged into another
			// since the chat began: the contact is the kept customer's
			// (the session stays the other's, for an undo of the merge).
			customer, err := customerNow(tx, in.Contact.CustomerID)
			if err != nil {
				return err
			}
			in.Contact.CustomerID = customer
			in.Contact.ConversationID = cs.ConversationID
			if err := appendContact(tx, in.Contact); err != nil {
				return err
			}
			cs.ContactID = in.Contact.ID
			if in.OpenTask != nil {
				p, err := in.OpenTask(cs.ContactID)
				if err != nil {
					return err
				}
				if err := tx.Bucket(bucketOpenTasks).Put(u64(cs.ContactID), p); err != nil {
					return err
				}
			}
			changed = true
		}
		if in.Update != nil {
			before, err := json.Marshal(cs)
			if err != nil {
				return err
			}
			in.Update(cs)
			after, err := json.Marshal(cs)
			if err != nil {
				return err
			}
			changed = changed || !bytes.Equal(before, after)
		}
		if !changed {
			return nil
		}
		cs.Updated = in.Message.At
		return putJSON(tx.Bucket(bucketChatSessions), u64(cs.ID), cs)
	})
	if err != nil {
		return nil, false, err
	}
	return cs, dup, nil
}

// refWindow is how many of a session's latest messages are searched for a
// message sent again: a browser sends again only what it sent since its
// last acknowledgement, a handful at most within the rate limit.
const refWindow = 64

// recentRef finds a message with ref among a session's latest messages.
func recentRef(c *bolt.Cursor, session uint64, ref string) (ChatMessage, bool) {
	quoted, err := json.Marshal(ref)
	if err != nil {
		return ChatMessage{}, false
	}
	needle := append([]byte(`"ref":`), quoted...)
	k, v := c.Seek(chatMessageKey(session+1, 0))
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for i := 0; i < refWindow && len(k) == 16 && binary.BigEndian.Uint64(k) == session; i++ {
		if bytes.Contains(v, needle) {
			var m ChatMessage
			if json.Unmarshal(v, &m) == nil && m.Ref == ref {
				return m, true
			}
		}
		k, v = c.Prev()
	}
	return ChatMessage{}, false
}

// UpdateChatSession changes an open session in one transaction and
// returns it as stored.
func (s *Store) UpdateChatSession(ctx context.Context, id uint64, change func(*ChatSession) error) (*ChatSession, error) {
	var cs *ChatSession
	err := s.update(ctx, func(tx *bolt.Tx) error {
		cs = &ChatSession{}
		sessions := tx.Bucket(bucketChatSessions)
		if err := getChatSession(tx, id, cs); err != nil {
			return err
		}
		if cs.Status != "open" {
			return fmt.Errorf("chat session %d: %w", id, ErrChatEnded)
		}
		if err := change(cs); err != nil {
			return err
		}
		return putJSON(sessions, u64(id), cs)
	})
	if err != nil {
		return nil, err
	}
	return cs, nil
}

// ChatMessages returns a session's messages numbered after after, in
// order: what a reconnecting customer missed, or (after 0) the whole
// transcript.
func (s *Store) ChatMessages(sessionID, after uint64) ([]ChatMessage, error) {
	var out []ChatMessage
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = chatMessagesIn(tx, sessionID, after)
		return err
	})
	return out, err
}

func chatMessagesIn(tx *bolt.Tx, sessionID, after uint64) ([]ChatMessage, error) {
	var out []ChatMessage
	prefix := u64(sessionID)
	c := tx.Bucket(bucketChatMessages).Cursor()
	for k, v := c.Seek(chatMessageKey(sessionID, after+1)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var m ChatMessage
		if err := json.Unmarshal(v, &m); err != nil {
			return nil, fmt.Errorf("chat message %x: %w", k, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// EndChatSession ends an open session in one transaction: the session is
// closed and no longer found by its peer, its conversation closed, and
// its contact (when the customer wrote at all) gets the transcript, as
// transcript renders it, for its text, and at for its end. The session
// as stored is returned; ending an ended session returns ErrChatEnded.
func (s *Store) EndChatSession(ctx context.Context, id uint64, at time.Time, transcript func(*ChatSession, []ChatMessage) string) (*ChatSession, error) {
	var cs *ChatSession
	err := s.update(ctx, func(tx *bolt.Tx) error {
		cs = &ChatSession{}
		sessions := tx.Bucket(bucketChatSessions)
		if err := getChatSession(tx, id, cs); err != nil {
			return err
		}
		if cs.Status != "open" {
			return fmt.Errorf("chat session %d: %w", id, ErrChatEnded)
		}
		cs.Status, cs.Ended, cs.Updated = "ended", at, at
		if err := putJSON(sessions, u64(id), cs); err != nil {
			return err
		}
		if err := tx.Bucket(bucketChatOpen).Delete(u64(id)); err != nil {
			return err
		}
		if cs.Peer != "" {
			peers := tx.Bucket(bucketChatPeers)
			if v := peers.Get([]byte(cs.Peer)); v != nil && binary.BigEndian.Uint64(v) == id {
				if err := peers.Delete([]byte(cs.Peer)); err != nil {
					return err
				}
			}
		}
		convs := tx.Bucket(bucketConversations)
		var conv Conversation
		if err := getJSON(convs, u64(cs.ConversationID), &conv, "conversation", cs.ConversationID); err == nil {
			conv.Status, conv.Updated = "closed", at
			if err := putJSON(convs, u64(conv.ID), &conv); err != nil {
				return err
			}
		}
		if cs.ContactID == 0 {
			return nil
		}
		msgs, err := chatMessagesIn(tx, id, 0)
		if err != nil {
			return err
		}
		jk := tx.Bucket(bucketJourneyKeys).Get(journeyKeysKey(kindContact, cs.ContactID))
		if jk == nil {
			return nil // erased meanwhile
		}
		journey := tx.Bucket(bucketJourney)
		var c Contact
		if err := json.Unmarshal(journey.Get(jk), &c); err != nil {
			return fmt.Errorf("contact %d: %w", cs.ContactID, err)
		}
		c.Text, c.End = transcript(cs, msgs), at
		if c.Agent == "" {
			c.Agent = cs.Agent
		}
		return putContact(tx, bytes.Clone(jk), &c)
	})
	if err != nil {
		return nil, err
	}
	return cs, nil
}

// customerChatSessions are the chat sessions of a customer, given as
// mergedInto's list: a merge leaves the sessions of the customer merged
// away in its name.
func customerChatSessions(tx *bolt.Tx, customerIDs []uint64) ([]ChatSession, error) {
	var out []ChatSession
	err := tx.Bucket(bucketChatSessions).ForEach(func(k, v []byte) error {
		var cs ChatSession
		if err := json.Unmarshal(v, &cs); err != nil {
			return fmt.Errorf("chat session %x: %w", k, err)
		}
		if slices.Contains(customerIDs, cs.CustomerID) {
			out = append(out, cs)
		}
		return nil
	})
	return out, err
}

// eraseCustomerChats removes a customer's chat sessions, their messages
// and every index entry naming them; part of EraseCustomer.
func eraseCustomerChats(tx *bolt.Tx, customerIDs []uint64) (int, error) {
	list, err := customerChatSessions(tx, customerIDs)
	if err != nil {
		return 0, err
	}
	sessions := tx.Bucket(bucketChatSessions)
	for _, cs := range list {
		key := u64(cs.ID)
		if err := deletePrefix(tx.Bucket(bucketChatMessages), key, nil); err != nil {
			return 0, err
		}
		for _, b := range [][]byte{bucketChatTokens, bucketChatPeers, bucketChatConvs} {
			var n int
			if err := deleteWhere(tx.Bucket(b), func(v []byte) (bool, error) { return bytes.Equal(v, key), nil }, &n); err != nil {
				return 0, err
			}
		}
		if err := tx.Bucket(bucketChatOpen).Delete(key); err != nil {
			return 0, err
		}
		if err := sessions.Delete(key); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}
