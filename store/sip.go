package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketSIPRegistrations holds each SIP user's registered contacts:
// user → []SIPRegistration. It is created by the first registration, so
// it needs no schema step: older stores simply have none yet.
var bucketSIPRegistrations = []byte("sip_registrations")

// SIPRegistration is one registered contact of an agent's SIP account: a
// phone that is rung for the agent's calls until Expires.
type SIPRegistration struct {
	Contact string `json:"contact"` // the Contact URI the phone gave
	// Source and Transport are where the REGISTER came from: requests go
	// there, so phones behind NAT are reached.
	Source    string    `json:"source"`
	Transport string    `json:"transport"`
	CallID    string    `json:"call_id"`
	CSeq      uint32    `json:"cseq"`
	Expires   time.Time `json:"expires"`
}

// SetSIPRegistrations replaces users' registered contacts, in one
// transaction; none removes a user's entry.
func (s *Store) SetSIPRegistrations(ctx context.Context, byUser map[string][]SIPRegistration) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSIPRegistrations)
		if err != nil {
			return err
		}
		for user, regs := range byUser {
			if len(regs) == 0 {
				err = b.Delete([]byte(user))
			} else {
				err = putJSON(b, []byte(user), regs)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// SIPRegistrations returns every user's registered contacts, as last set
// (expired ones included: the caller knows the time).
func (s *Store) SIPRegistrations() (map[string][]SIPRegistration, error) {
	out := map[string][]SIPRegistration{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSIPRegistrations)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var regs []SIPRegistration
			if err := json.Unmarshal(v, &regs); err != nil {
				return fmt.Errorf("sip registrations of %q: %w", k, err)
			}
			out[string(k)] = regs
			return nil
		})
	})
	return out, err
}
