package store

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const benchWriters = 64

// benchStore is a new store with the writers' customers, 1 to 64.
func benchStore(b *testing.B) *Store {
	s := openTest(b, filepath.Join(b.TempDir(), "d.db"))
	createCustomers(b, s, benchWriters)
	return s
}

func benchContact(w int) *Contact {
	return &Contact{CustomerID: uint64(w) + 1, Channel: "email", Direction: "in", Start: time.Now(), Subject: "Rechnung 2026-11", Text: "Guten Tag, meine Rechnung stimmt nicht."}
}

// runWriters runs b.N appends spread over 64 goroutines and reports
// appends per second.
func runWriters(b *testing.B, appendOne func(w int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range benchWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := appendOne(w); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
}

// BenchmarkAppend64Writers compares three ways to make 64 writers' contact
// appends durable, each writer waiting for its fsync: one transaction per
// write, bbolt's db.Batch (10 ms default delay), and dirigent's group
// commit (the next transaction starts when the previous fsync returns).
func BenchmarkAppend64Writers(b *testing.B) {
	b.Run("tx-per-write", func(b *testing.B) {
		s := benchStore(b)
		runWriters(b, func(w int) error {
			return s.db.Update(func(tx *bolt.Tx) error { return appendContact(tx, benchContact(w)) })
		})
	})
	b.Run("bolt-batch", func(b *testing.B) {
		s := benchStore(b)
		runWriters(b, func(w int) error {
			c := benchContact(w)
			return s.db.Batch(func(tx *bolt.Tx) error { return appendContact(tx, c) })
		})
	})
	b.Run("group-commit", func(b *testing.B) {
		s := benchStore(b)
		runWriters(b, func(w int) error { return s.AppendContact(ctx, benchContact(w)) })
	})
}

const (
	fixtureContacts  = 1_000_000
	fixtureCustomers = 20_000
	fixtureVersion   = 3 // bump when the key or record layout changes
)

// journeyFixture returns a store file holding 1,000,000 contacts of
// 20,000 customers (50 each), built once and kept in the temp dir between
// runs.
func journeyFixture(b *testing.B) string {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("dirigent-bench-journey-v%d-%d.db", fixtureVersion, len(migrations)))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	b.Logf("building %s (once)", path)
	tmp := path + ".tmp"
	os.Remove(tmp)
	s, err := Open(Options{Path: tmp, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	createCustomers(b, s, fixtureCustomers)
	const perTx = 50_000
	for done := 0; done < fixtureContacts; done += perTx {
		err := s.Bulk(ctx, func(bk *Bulk) error {
			for i := done; i < done+perTx; i++ {
				c := &Contact{
					CustomerID: uint64(i%fixtureCustomers) + 1, Channel: []string{"voice", "email", "message"}[i%3],
					Direction: "in", Queue: "support", Agent: "anna", Start: base.Add(time.Duration(i) * time.Minute),
					Outcome: "resolved", Subject: "Rechnung", Text: "Guten Tag, meine Rechnung stimmt nicht.",
				}
				if err := bk.AppendContact(c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkJourneyLast50 reads the newest 50 journey entries, decoded, of
// random customers in a store of 1,000,000 contacts.
func BenchmarkJourneyLast50(b *testing.B) {
	s := openTest(b, journeyFixture(b))
	rng := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		cust := uint64(rng.IntN(fixtureCustomers)) + 1
		start := time.Now()
		es, err := s.Journey(cust, time.Time{}, 50)
		lat = append(lat, time.Since(start))
		if err != nil || len(es) != fixtureContacts/fixtureCustomers {
			b.Fatalf("customer %d: %d entries, %v", cust, len(es), err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
