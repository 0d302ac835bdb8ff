package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketDeskUsers holds desk logins: name → DeskUser. It is created by the
// first password set rather than by a schema migration: nothing else
// refers to it, a store without it simply has no passwords yet, and an
// older dirigent opening the file ignores it.
var bucketDeskUsers = []byte("desk_users")

// DeskUser is a desk login's password, as a hash (bcrypt); who may log in
// and with which roles is configuration, not data.
type DeskUser struct {
	Name         string    `json:"name"`
	PasswordHash []byte    `json:"password_hash"`
	Changed      time.Time `json:"changed"`
}

// SetDeskPassword stores the password hash of login name, replacing any
// earlier one.
func (s *Store) SetDeskPassword(ctx context.Context, name string, hash []byte, at time.Time) error {
	if name == "" || len(hash) == 0 {
		return fmt.Errorf("desk user %q: name and password hash are required", name)
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketDeskUsers)
		if err != nil {
			return err
		}
		return putJSON(b, []byte(name), DeskUser{Name: name, PasswordHash: bytes.Clone(hash), Changed: at.UTC()})
	})
}

// DeskUser returns login name's stored password; ErrNotFound when none
// was ever set.
func (s *Store) DeskUser(name string) (*DeskUser, error) {
	var u DeskUser
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeskUsers)
		if b == nil || b.Get([]byte(name)) == nil {
			return fmt.Errorf("desk user %q: %w", name, ErrNotFound)
		}
		return getJSON(b, []byte(name), &u, "desk user", 0)
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}
