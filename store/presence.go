package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// keyPresence holds the agents' presence as a stopping daemon left it.
var keyPresence = []byte("presence_at_stop")

// PresenceAtStop is the agents' presence when the daemon stopped, for
// the next start to take up again after a planned restart.
type PresenceAtStop struct {
	At     time.Time       `json:"at"`
	Agents []AgentPresence `json:"agents"`
}

// AgentPresence is one agent's presence, by its name ("available",
// "away"), and the reason of an absence.
type AgentPresence struct {
	Agent    string `json:"agent"`
	Presence string `json:"presence"`
	Reason   string `json:"reason,omitempty"`
}

// PutPresenceAtStop keeps the agents' presence for the next start,
// replacing what an earlier stop kept.
func (s *Store) PutPresenceAtStop(ctx context.Context, p PresenceAtStop) error {
	return s.update(ctx, func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bucketMeta), keyPresence, p) })
}

// TakePresenceAtStop returns what the last stop kept and forgets it, so
// that it is taken up once at most; nil when there is none (the first
// start, or one after a crash).
func (s *Store) TakePresenceAtStop(ctx context.Context) (*PresenceAtStop, error) {
	var p *PresenceAtStop
	var unreadable error // forgotten all the same
	err := s.update(ctx, func(tx *bolt.Tx) error {
		p, unreadable = nil, nil
		meta := tx.Bucket(bucketMeta)
		data := meta.Get(keyPresence)
		if data == nil {
			return nil
		}
		p = &PresenceAtStop{}
		if unreadable = json.Unmarshal(data, p); unreadable != nil {
			p = nil
		}
		return meta.Delete(keyPresence)
	})
	if err = cmp.Or(err, unreadable); err != nil {
		return nil, fmt.Errorf("presence at the last stop: %w", err)
	}
	return p, nil
}
