package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Buckets.
var (
	bucketMeta          = []byte("meta")
	bucketCustomers     = []byte("customers")     // id → Customer
	bucketIdentities    = []byte("identities")    // "kind:value" → customer id
	bucketCustomerIDs   = []byte("customer_ids")  // customer id | "kind:value" → nothing
	bucketJourney       = []byte("journey")       // customer id | time | kind | id → Contact or Touchpoint
	bucketJourneyKeys   = []byte("journey_keys")  // kind | id → journey key
	bucketContactTexts  = []byte("contact_texts") // contact id → its Text, which the journey's Contact lacks
	bucketAgentJourney  = []byte("agent_journey") // journey key of a contact with an agent → the agent
	bucketConversations = []byte("conversations") // id → Conversation
	bucketEvents        = []byte("events")        // seq → time | event payload
	bucketOpenTasks     = []byte("open_tasks")    // task id → task payload
	bucketCRMIDs        = []byte("crm_ids")       // CRM id → customer id
	bucketNames         = []byte("names")         // folded name | 0 | customer id → nothing
	bucketMerges        = []byte("merges")        // merge id → Merge
	bucketMails         = []byte("mails")         // mail id → InboundMail
	bucketMailRaw       = []byte("mail_raw")      // mail id → the message's bytes
	bucketMailPending   = []byte("mail_pending")  // mail id → nothing, until processed
	bucketMailContacts  = []byte("mail_contacts") // mail id → contact id
	bucketMessageIDs    = []byte("message_ids")   // Message-ID → conversation id
	bucketOutbox        = []byte("outbox")        // outbound id → OutboundMail, without Raw since schema 9
	bucketOutboxRaw     = []byte("outbox_raw")    // outbound id → the message's bytes
	bucketOutboxDue     = []byte("outbox_due")    // outbound id → nothing, until sent
	bucketMailSources   = []byte("mail_sources")  // "id:"+source id, "msg:"+source+"|"+Message-ID → mail id
	bucketFetchState    = []byte("fetch_state")   // mailbox name → FetchState
	bucketChatSessions  = []byte("chat_sessions") // session id → ChatSession
	bucketChatMessages  = []byte("chat_messages") // session id | seq → ChatMessage
	bucketChatTokens    = []byte("chat_tokens")   // SHA-256 of a browser's token → session id
	bucketChatPeers     = []byte("chat_peers")    // SIP peer identity → open session id
	bucketChatOpen      = []byte("chat_open")     // session id → nothing, until it ends
	bucketChatConvs     = []byte("chat_convs")    // conversation id → session id
	bucketDeskSessions  = []byte("desk_sessions") // SHA-256 of a desk session's secret → DeskSession

	keySchema = []byte("schema")
)

// migrations[i] brings a store from schema version i to i+1; the length
// is the version this binary writes. Add new steps at the end only.
var migrations = []func(*bolt.Tx) error{
	func(tx *bolt.Tx) error { // 0 → 1: the first schema
		for _, b := range [][]byte{bucketCustomers, bucketIdentities, bucketCustomerIDs, bucketJourney, bucketJourneyKeys, bucketConversations, bucketEvents, bucketOpenTasks} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	func(tx *bolt.Tx) error { // 1 → 2: customers findable by CRM id
		crm, err := tx.CreateBucketIfNotExists(bucketCRMIDs)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketCustomers).ForEach(func(k, v []byte) error {
			var c Customer
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("customer %x: %w", k, err)
			}
			if c.CRMID == "" {
				return nil
			}
			return crm.Put([]byte(c.CRMID), k)
		})
	},
	func(tx *bolt.Tx) error { // 2 → 3: look-alike names, merges that can be undone
		if _, err := tx.CreateBucketIfNotExists(bucketMerges); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketNames); err != nil {
			return err
		}
		return tx.Bucket(bucketCustomers).ForEach(func(k, v []byte) error {
			var c Customer
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("customer %x: %w", k, err)
			}
			return indexName(tx, &c, nil)
		})
	},
	func(tx *bolt.Tx) error { // 3 → 4: inbound mail
		for _, b := range [][]byte{bucketMails, bucketMailRaw, bucketMailPending, bucketMailContacts, bucketMessageIDs, bucketOutbox, bucketOutboxDue, bucketMailSources, bucketFetchState} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	func(tx *bolt.Tx) error { // 4 → 5: chat sessions of the message channel
		for _, b := range [][]byte{bucketChatSessions, bucketChatMessages, bucketChatTokens, bucketChatPeers, bucketChatOpen, bucketChatConvs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	func(tx *bolt.Tx) error { // 5 → 6: contacts' texts apart from the journey (see putContact)
		_, err := tx.CreateBucketIfNotExists(bucketContactTexts)
		return err
	},
	func(tx *bolt.Tx) error { // 6 → 7: who handled each contact, for LastAgent
		agents, err := tx.CreateBucketIfNotExists(bucketAgentJourney)
		if err != nil {
			return err
		}
		agents.FillPercent = 1 // journey order is key order: appends only
		c := tx.Bucket(bucketJourney).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if k[16] != kindContact {
				continue
			}
			var ct struct {
				Agent string `json:"agent"`
			}
			if err := json.Unmarshal(v, &ct); err != nil {
				return fmt.Errorf("contact at %x: %w", k, err)
			}
			if ct.Agent != "" {
				if err := agents.Put(bytes.Clone(k), []byte(ct.Agent)); err != nil {
					return err
				}
			}
		}
		return nil
	},
	func(tx *bolt.Tx) error { // 7 → 8: desk sessions that outlive a restart
		_, err := tx.CreateBucketIfNotExists(bucketDeskSessions)
		return err
	},
	func(tx *bolt.Tx) error { // 8 → 9: replies' bytes apart from the outbox's records
		// Records written before keep their bytes in them (OutboundMail.Raw),
		// read as they are: moving them all could outlast a start's
		// timeout.
		_, err := tx.CreateBucketIfNotExists(bucketOutboxRaw)
		return err
	},
}

func schemaVersion(tx *bolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	v := meta.Get(keySchema)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, errors.New("corrupt schema version")
	}
	return int(binary.BigEndian.Uint64(v)), nil
}

// migrate runs the missing steps of steps in tx, which the caller commits
// as one: a failed migration leaves the file as it was.
func migrate(tx *bolt.Tx, steps []func(*bolt.Tx) error) error {
	v, err := schemaVersion(tx)
	if err != nil {
		return err
	}
	if v > len(steps) {
		return fmt.Errorf("schema version %d is newer than this dirigent knows (%d): use a newer dirigent or restore a backup", v, len(steps))
	}
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	for ; v < len(steps); v++ {
		if err := steps[v](tx); err != nil {
			return fmt.Errorf("schema migration %d → %d: %w", v, v+1, err)
		}
		if err := meta.Put(keySchema, u64(uint64(v+1))); err != nil {
			return err
		}
	}
	return nil
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
