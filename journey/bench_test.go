package journey

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"dirigent/store"
)

const (
	benchCustomers        = 1_000_000
	benchContactsPerCust  = 10
	benchFixtureVersion   = 1
	benchCustomersPerBulk = 10_000
)

func benchPhone(i int) string { return fmt.Sprintf("+4930%08d", 10_000_000+i) }

// contextFixture is a store of 1,000,000 customers with 10,000,000
// contacts, built once into the temp directory (several GB).
func contextFixture(b *testing.B) string {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("dirigent-bench-context-v%d.db", benchFixtureVersion))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	b.Logf("building %s (once; minutes)", path)
	tmp := path + ".tmp"
	os.Remove(tmp)
	st, err := store.Open(store.Options{Path: tmp, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	intents := []string{"billing", "outage", "sales"}
	for first := 0; first < benchCustomers; first += benchCustomersPerBulk {
		err := st.Bulk(ctx, func(bk *store.Bulk) error {
			for i := first; i < first+benchCustomersPerBulk; i++ {
				c := &store.Customer{Name: fmt.Sprintf("Kunde %d", i), ValueTier: i % 4, Created: base}
				if err := bk.CreateCustomer(c); err != nil {
					return err
				}
				if err := bk.LinkIdentity("phone:"+benchPhone(i), c.ID); err != nil {
					return err
				}
				for k := range benchContactsPerCust {
					ct := &store.Contact{
						CustomerID: c.ID, Channel: []string{"voice", "email", "message"}[k%3], Direction: "in",
						Start: base.Add(time.Duration(i%1000)*time.Hour + time.Duration(k)*24*time.Hour), Agent: fmt.Sprintf("agent%d", k%7),
						Intent: intents[(i+k)%3], Outcome: []string{"resolved", "callback"}[k%2], WrapCode: "done",
						Subject: "Anfrage", Text: "Guten Tag, ich habe eine Frage zu meiner Rechnung.",
					}
					if err := bk.AppendContact(ct); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	st.Close()
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkContactContext is what happens when a call comes in: identify
// the caller, read the last 50 journey entries with repeat detection, and
// rank the next best actions, in a store of 1,000,000 customers and
// 10,000,000 contacts.
func BenchmarkContactContext(b *testing.B) {
	st, err := store.Open(store.Options{Path: contextFixture(b), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	yes := true
	j, err := New(Config{
		Region: "DE", RepeatWindow: 72 * time.Hour, ResolvedOutcomes: []string{"resolved"},
		Actions: []ActionRule{
			{Text: "Apologise and solve it now", Reason: "Still not solved", Priority: 100, Repeat: &yes},
			{Text: "Offer a payment plan", Reason: "Billing, high value", Priority: 50, Intents: []string{"billing"}, MinTier: 2},
		},
	}, Deps{Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	at := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		phone := benchPhone(rng.IntN(benchCustomers))
		start := time.Now()
		c, created, err := j.Identify(ctx, KindPhone, phone, "")
		if err != nil || created {
			b.Fatalf("%s: created=%v %v", phone, created, err)
		}
		cc, err := j.ContextFor(c.ID, at)
		if err != nil {
			b.Fatal(err)
		}
		j.NextBestActions(cc, "voice", "billing")
		lat = append(lat, time.Since(start))
		if len(cc.Recent) != benchContactsPerCust {
			b.Fatalf("%d journey entries", len(cc.Recent))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
