package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DeskSession is a logged-in desk user, kept so that a restart of the
// daemon does not log everyone out. The session's secret (the cookie) is
// never stored: Hash, its SHA-256, is the key, so a backup or a copy of
// the file lets nobody in.
type DeskSession struct {
	Hash  []byte   `json:"-"` // SHA-256 of the secret; the record's key
	User  string   `json:"user"`
	Roles []string `json:"roles"`
	// CSRF is the token the page sends with every change; useless
	// without the cookie, and the page must get it again after a restart.
	CSRF    string    `json:"csrf"`
	Created time.Time `json:"created"`
	// LastUsed is the last request as far as it was written: the desk
	// writes it at most about once a minute per session, not on every
	// request.
	LastUsed time.Time `json:"last_used"`
}

// DeskSessionUse is a session's last use, for TouchDeskSessions.
type DeskSessionUse struct {
	Hash []byte
	At   time.Time
}

func checkSessionHash(h []byte) error {
	if len(h) != sha256.Size {
		return fmt.Errorf("desk session: hash of %d bytes, want a SHA-256 (%d)", len(h), sha256.Size)
	}
	return nil
}

// PutDeskSession stores ds, replacing a session with the same hash.
func (s *Store) PutDeskSession(ctx context.Context, ds *DeskSession) error {
	if err := checkSessionHash(ds.Hash); err != nil {
		return err
	}
	if ds.User == "" {
		return errors.New("desk session: no user")
	}
	rec := *ds
	rec.Created, rec.LastUsed = ds.Created.UTC(), ds.LastUsed.UTC()
	key := bytes.Clone(ds.Hash)
	return s.update(ctx, func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketDeskSessions), key, rec)
	})
}

// DeskSessions returns every stored desk session, expired or not. A
// record that does not decode comes back with its Hash alone (no User),
// for the caller to delete: one bad record must not stop the daemon.
func (s *Store) DeskSessions() ([]DeskSession, error) {
	var out []DeskSession
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeskSessions).ForEach(func(k, v []byte) error {
			var ds DeskSession
			if json.Unmarshal(v, &ds) != nil {
				ds = DeskSession{}
			}
			ds.Hash = bytes.Clone(k)
			out = append(out, ds)
			return nil
		})
	})
	return out, err
}

// TouchDeskSessions records the sessions' last uses in one transaction.
// A session no longer stored (logged out, expired) is not brought back,
// and a last use never moves backwards.
func (s *Store) TouchDeskSessions(ctx context.Context, uses []DeskSessionUse) error {
	for _, u := range uses {
		if err := checkSessionHash(u.Hash); err != nil {
			return err
		}
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeskSessions)
		for _, u := range uses {
			v := b.Get(u.Hash)
			if v == nil {
				continue
			}
			var ds DeskSession
			if json.Unmarshal(v, &ds) != nil || !u.At.After(ds.LastUsed) {
				continue
			}
			ds.LastUsed = u.At.UTC()
			if err := putJSON(b, bytes.Clone(u.Hash), ds); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteDeskSessions removes the sessions with hashes; unknown ones are
// no error.
func (s *Store) DeleteDeskSessions(ctx context.Context, hashes ...[]byte) error {
	if len(hashes) == 0 {
		return nil
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeskSessions)
		for _, h := range hashes {
			if err := b.Delete(h); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteIdleDeskSessions removes the sessions last used before before
// and returns how many there were. It writes only when there are some:
// the desk sweeps every minute.
func (s *Store) DeleteIdleDeskSessions(ctx context.Context, before time.Time) (int, error) {
	var idle [][]byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		idle = idleDeskSessions(tx.Bucket(bucketDeskSessions), before)
		return nil
	}); err != nil || len(idle) == 0 {
		return 0, err
	}
	var n int
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeskSessions)
		idle := idleDeskSessions(b, before) // again: a touch may have come in between
		for _, k := range idle {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(idle)
		return nil
	})
	return n, err
}

func idleDeskSessions(b *bolt.Bucket, before time.Time) [][]byte {
	var idle [][]byte
	b.ForEach(func(k, v []byte) error {
		var ds struct {
			LastUsed time.Time `json:"last_used"`
		}
		// A record that does not decode is of no use to anyone.
		if json.Unmarshal(v, &ds) != nil || ds.LastUsed.Before(before) {
			idle = append(idle, slices.Clone(k))
		}
		return nil
	})
	return idle
}
