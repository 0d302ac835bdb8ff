package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// SearchCustomersByName returns up to limit customers whose name has a
// word starting with each word of query, folded like the look-alike
// index ("mull" finds "Jörg Müller"), in index order. It reads the keys
// of the name index, not the customers, and stops at limit.
func (s *Store) SearchCustomersByName(query string, limit int) ([]Customer, error) {
	words := strings.Fields(nameKey(query))
	if len(words) == 0 || limit <= 0 {
		return nil, nil
	}
	var out []Customer
	err := s.db.View(func(tx *bolt.Tx) error {
		customers := tx.Bucket(bucketCustomers)
		return tx.Bucket(bucketNames).ForEach(func(k, _ []byte) error {
			if len(out) >= limit {
				return errStopScan
			}
			sep := bytes.IndexByte(k, 0)
			if sep < 0 || len(k) != sep+9 || !wordsMatch(strings.Fields(string(k[:sep])), words) {
				return nil
			}
			id := binary.BigEndian.Uint64(k[sep+1:])
			var c Customer
			if err := getJSON(customers, u64(id), &c, "customer", id); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return out, err
}

// errStopScan ends a ForEach early.
var errStopScan = errors.New("stop scan")

// wordsMatch: every query word is a prefix of some name word.
func wordsMatch(name, query []string) bool {
	for _, q := range query {
		found := false
		for _, w := range name {
			if strings.HasPrefix(w, q) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
