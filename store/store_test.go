package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

var ctx = context.Background()

func openTest(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(Options{Path: path, LockTimeout: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// createCustomers makes customers 1 to n of a new store: contacts are
// written only for customers who exist.
func createCustomers(t testing.TB, s *Store, n int) {
	t.Helper()
	if err := s.Bulk(ctx, func(b *Bulk) error {
		for range n {
			if err := b.CreateCustomer(&Customer{}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestCustomersAndIdentities(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	joe := &Customer{Name: "Joe", ValueTier: 2, Attributes: map[string]string{"city": "Köln"}, Created: time.Now().UTC()}
	if err := s.CreateCustomer(ctx, joe); err != nil || joe.ID == 0 {
		t.Fatalf("create: id %d, %v", joe.ID, err)
	}
	ann := &Customer{Name: "Ann"}
	if err := s.CreateCustomer(ctx, ann); err != nil || ann.ID == joe.ID {
		t.Fatalf("second customer: id %d, %v", ann.ID, err)
	}
	for _, id := range []string{"phone:+4930123456", "email:joe@example.com"} {
		if err := s.LinkIdentity(ctx, id, joe.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.LookupIdentity("phone:+4930123456"); err != nil || got != joe.ID {
		t.Errorf("lookup: %d, %v", got, err)
	}
	// An identity moves when linked to another customer.
	if err := s.LinkIdentity(ctx, "email:joe@example.com", ann.ID); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.Identities(joe.ID); len(ids) != 1 || ids[0] != "phone:+4930123456" {
		t.Errorf("joe's identities %v", ids)
	}
	if ids, _ := s.Identities(ann.ID); len(ids) != 1 || ids[0] != "email:joe@example.com" {
		t.Errorf("ann's identities %v", ids)
	}
	if _, err := s.LookupIdentity("phone:+1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown identity: %v", err)
	}
	if err := s.LinkIdentity(ctx, "phone:+2", 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("link to a missing customer: %v", err)
	}
	got, err := s.Customer(joe.ID)
	if err != nil || got.Name != "Joe" || got.Attributes["city"] != "Köln" {
		t.Errorf("customer %+v, %v", got, err)
	}
	got.ValueTier = 3
	if err := s.PutCustomer(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Customer(joe.ID); got.ValueTier != 3 {
		t.Errorf("update lost: %+v", got)
	}
	if err := s.PutCustomer(ctx, &Customer{ID: 12345}); !errors.Is(err, ErrNotFound) {
		t.Errorf("put of a missing customer: %v", err)
	}
}

func TestJourneyIsTimeOrderedAcrossKinds(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 8)
	base := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	// Customer 7's entries, written out of time order, plus a neighbour's.
	for i, m := range []int{30, 10, 50, 20, 40} {
		at := base.Add(time.Duration(m) * time.Minute)
		if i%2 == 0 {
			c := &Contact{CustomerID: 7, Channel: "voice", Start: at, Subject: fmt.Sprint(m)}
			if err := s.AppendContact(ctx, c); err != nil {
				t.Fatal(err)
			}
		} else {
			tp := &Touchpoint{CustomerID: 7, Type: "order", At: at, Data: map[string]string{"m": fmt.Sprint(m)}}
			if err := s.AddTouchpoint(ctx, tp); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, cust := range []uint64{6, 8} {
		if err := s.AppendContact(ctx, &Contact{CustomerID: cust, Start: base.Add(25 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	minutes := func(es []JourneyEntry) []int {
		var out []int
		for _, e := range es {
			out = append(out, int(e.At().Sub(base)/time.Minute))
		}
		return out
	}
	all, err := s.Journey(7, time.Time{}, 50)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(minutes(all)); got != "[50 40 30 20 10]" {
		t.Errorf("journey %s, want newest first", got)
	}
	page1, _ := s.Journey(7, time.Time{}, 2)
	page2, _ := s.Journey(7, page1[1].At(), 2)
	page3, _ := s.Journey(7, page2[1].At(), 2)
	if got := fmt.Sprint(minutes(page1), minutes(page2), minutes(page3)); got != "[50 40] [30 20] [10]" {
		t.Errorf("pages %s", got)
	}
	if es, _ := s.Journey(99, time.Time{}, 5); len(es) != 0 {
		t.Errorf("journey of a customer without contacts: %v", es)
	}
	// The last customer's journey, where the scan starts at the end.
	if es, _ := s.Journey(8, time.Time{}, 5); len(es) != 1 {
		t.Errorf("journey of the last customer: %d entries", len(es))
	}

	c := all[0].Contact
	c.Outcome, c.Start, c.CustomerID = "resolved", time.Now(), 1 // start and customer are kept
	if err := s.UpdateContact(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.Contact(c.ID)
	if err != nil || got.Outcome != "resolved" || got.CustomerID != 7 || !got.Start.Equal(base.Add(50*time.Minute)) {
		t.Errorf("after update: %+v, %v", got, err)
	}
	if _, err := s.Contact(424242); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing contact: %v", err)
	}
	if err := s.UpdateContact(ctx, &Contact{ID: 424242}); !errors.Is(err, ErrNotFound) {
		t.Errorf("update of a missing contact: %v", err)
	}
}

func TestConversationsAndEvents(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	conv := &Conversation{CustomerID: 3, Channel: "email", Subject: "Rechnung", Tag: "DG-1"}
	if err := s.PutConversation(ctx, conv); err != nil || conv.ID == 0 {
		t.Fatalf("%d %v", conv.ID, err)
	}
	if got, err := s.Conversation(conv.ID); err != nil || got.Tag != "DG-1" {
		t.Errorf("%+v %v", got, err)
	}
	base := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	ev := func(min int, p string) JournalEvent {
		return JournalEvent{At: base.Add(time.Duration(min) * time.Minute), Payload: []byte(p)}
	}
	if err := s.AppendJournal(ctx, JournalBatch{Events: []JournalEvent{ev(0, "a"), ev(10, "b")}, Open: map[uint64][]byte{1: []byte("t1"), 2: []byte("t2")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendJournal(ctx, JournalBatch{Events: []JournalEvent{ev(20, "c")}, Open: map[uint64][]byte{2: []byte("t2'")}, Closed: []uint64{1}}); err != nil {
		t.Fatal(err)
	}
	scan := func(since time.Time) string {
		var got []string
		if err := s.ScanJournal(since, func(e JournalEvent) error {
			got = append(got, fmt.Sprintf("%d:%s", int(e.At.Sub(base)/time.Minute), e.Payload))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(got)
	}
	for since, want := range map[int]string{-5: "[0:a 10:b 20:c]", 5: "[10:b 20:c]", 10: "[10:b 20:c]", 20: "[20:c]", 30: "[]"} {
		if got := scan(base.Add(time.Duration(since) * time.Minute)); got != want {
			t.Errorf("journal since minute %d: %s, want %s", since, got, want)
		}
	}
	var open []string
	if err := s.OpenTasks(func(id uint64, p []byte) error {
		open = append(open, fmt.Sprintf("%d:%s", id, p))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(open) != "[2:t2']" {
		t.Errorf("open tasks %v", open)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	openTest(t, path)
	_, err := Open(Options{Path: path, LockTimeout: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second open: %v", err)
	}
}

func TestOneFailingWriteDoesNotFailItsGroup(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 64)
	var wg sync.WaitGroup
	errs := make([]error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%8 == 0 {
				errs[i] = s.PutCustomer(ctx, &Customer{ID: 1_000_000 + uint64(i)}) // no such customer
				return
			}
			errs[i] = s.AppendContact(ctx, &Contact{CustomerID: uint64(i), Start: time.Now()})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%8 == 0 && !errors.Is(err, ErrNotFound) {
			t.Errorf("write %d: %v, want not found", i, err)
		}
		if i%8 != 0 && err != nil {
			t.Errorf("write %d failed with its group: %v", i, err)
		}
	}
	for i := range 64 {
		if es, _ := s.Journey(uint64(i), time.Time{}, 5); i%8 != 0 && len(es) != 1 {
			t.Errorf("customer %d: %d contacts", i, len(es))
		}
	}
}

func TestWritesAfterClose(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "d.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.AppendContact(ctx, &Contact{}); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	// The committer is gone: no goroutine leaks per store.
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before Open", n, before)
	}
}

func TestSnapshotWhileWriting(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "d.db"))
	createCustomers(t, s, 8)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.AppendContact(ctx, &Contact{CustomerID: uint64(w) + 1, Start: time.Now()}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	var buf bytes.Buffer
	n, err := s.Snapshot(&buf)
	close(stop)
	wg.Wait()
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("snapshot: %d bytes, %v", n, err)
	}
	backup := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(backup, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Verify(backup); err != nil {
		t.Fatalf("verify: %v", err)
	}
	restored := openTest(t, backup)
	if es, err := restored.Journey(1, time.Time{}, 1); err != nil || len(es) != 1 {
		t.Errorf("restored journey: %d entries, %v", len(es), err)
	}
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(garbage, bytes.Repeat([]byte("x"), 8192), 0o600)
	if err := Verify(garbage); err == nil {
		t.Error("Verify accepted garbage")
	}
}

func TestSchemaVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	s := openTest(t, path)
	s.Close()

	// A later schema step runs once, on the next open.
	runs := 0
	steps := append(append([]func(*bolt.Tx) error(nil), migrations...), func(tx *bolt.Tx) error {
		runs++
		_, err := tx.CreateBucket([]byte("added"))
		return err
	})
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := db.Update(func(tx *bolt.Tx) error { return migrate(tx, steps) }); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if runs != 1 {
		t.Errorf("migration ran %d times", runs)
	}
	// That file is now newer than this binary.
	_, err = Open(Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
	want := fmt.Sprintf("schema version %d is newer than this dirigent knows (%d)", len(migrations)+1, len(migrations))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("open of a newer store: %v", err)
	}
}

// storeAtSchema is a store file as a dirigent of schema version wrote
// it, with what seed adds, for a migration's test.
func storeAtSchema(t *testing.T, version int, seed func(*bolt.Tx) error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("v%d.db", version))
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := migrate(tx, migrations[:version]); err != nil {
			return err
		}
		return seed(tx)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// A store written by a version-1 dirigent gets the CRM index on open.
func TestMigrationIndexesCRMIDs(t *testing.T) {
	s := openTest(t, storeAtSchema(t, 1, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCustomers).Put(u64(1), []byte(`{"id":1,"crm_id":"K-100","name":"Joe"}`))
	}))
	c, err := s.CustomerByCRMID("K-100")
	if err != nil || c.Name != "Joe" {
		t.Fatalf("after migration: %+v, %v", c, err)
	}
}

// A store a schema-5 dirigent wrote (testdata/schema5.db, made by that
// version's store: a call, a touchpoint, a mail through the intake, a
// long mail, an ended chat; the exports it gave beside it) reads as
// before after the migration, though its contacts keep their texts in the
// journey until they are next written, and knows who handled them.
func TestSchema5ContactTexts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v5.db")
	data, err := os.ReadFile("testdata/schema5.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, path)
	export := func(id uint64) string {
		t.Helper()
		e, err := s.ExportCustomer(id)
		if err != nil {
			t.Fatal(err)
		}
		e.Chats = nil // exported since schema 5's export
		b, _ := json.MarshalIndent(e, "", "\t")
		return string(b) + "\n"
	}
	for _, id := range []uint64{1, 2} {
		want, err := os.ReadFile(fmt.Sprintf("testdata/schema5-export-%d.json", id))
		if err != nil {
			t.Fatal(err)
		}
		if got := export(id); got != string(want) {
			t.Errorf("customer %d after the migration:\n%s\nwant (schema 5):\n%s", id, got, want)
		}
	}
	var es []JourneyEntry
	if err := s.JourneyFacts(1, time.Now(), func(e JourneyEntry) bool { es = append(es, e); return true }); err != nil || len(es) != 3 {
		t.Fatalf("journey's facts: %d entries, %v", len(es), err)
	}
	for _, e := range es {
		if e.Contact.Text != "" || e.Contact.Subject == "" {
			t.Errorf("without texts: %+v", e.Contact)
		}
	}
	// Schema 7 indexed who handled the contacts.
	if a, err := s.LastAgent(2, time.Now()); a != "anna" || err != nil {
		t.Errorf("last agent of customer 2 after the migration: %q, %v", a, err)
	}
	inJourney := func(id uint64) (text bool) {
		s.db.View(func(tx *bolt.Tx) error {
			jk := tx.Bucket(bucketJourneyKeys).Get(journeyKeysKey(kindContact, id))
			text = bytes.Contains(tx.Bucket(bucketJourney).Get(jk), []byte(`"text"`))
			return nil
		})
		return text
	}
	// Written again, a contact's text moves out of the journey.
	c, err := s.Contact(3)
	if err != nil || !inJourney(3) {
		t.Fatalf("contact 3: %+v, %v; text in the journey: %v", c, err, inJourney(3))
	}
	c.Outcome = "resolved"
	if err := s.UpdateContact(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Contact(3); err != nil || got.Text != c.Text || inJourney(3) {
		t.Errorf("after the update: %+v, %v; text in the journey: %v", got, err, inJourney(3))
	}
	// Retention drops texts in either place.
	if n, err := s.DropContactTexts(ctx, time.Now()); err != nil || n != 4 {
		t.Fatalf("dropped %d texts, %v; want Joe's 3 contacts' and his chat message's", n, err)
	}
	if es, err := s.Journey(1, time.Time{}, -1); err != nil || slices.ContainsFunc(es, func(e JourneyEntry) bool { return e.Contact.Text != "" }) {
		t.Errorf("texts left after retention: %v", err)
	}
	// Erasing a customer takes the texts kept apart too.
	c = &Contact{CustomerID: 2, Start: time.Now(), Text: "Rechnung"}
	if err := s.AppendContact(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EraseCustomer(ctx, 2, func([]byte) uint64 { return 0 }); err != nil {
		t.Fatal(err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketContactTexts).Stats().KeyN; n != 0 {
			t.Errorf("%d texts left after retention and erasure", n)
		}
		if n := tx.Bucket(bucketAgentJourney).Stats().KeyN; n != 0 {
			t.Errorf("%d agents left after erasure", n)
		}
		return nil
	})
}

// LastAgent follows contacts as they are written, updated, merged into
// another customer and back.
func TestLastAgent(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	joe, ann := &Customer{Name: "Joe"}, &Customer{Name: "Ann"}
	for _, c := range []*Customer{joe, ann} {
		if err := s.CreateCustomer(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	add := func(customer uint64, start time.Time, agent string) *Contact {
		c := &Contact{CustomerID: customer, Start: start, Agent: agent}
		if err := s.AppendContact(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	want := func(customer uint64, before time.Time, agent string) {
		t.Helper()
		if got, err := s.LastAgent(customer, before); got != agent || err != nil {
			t.Errorf("last agent of %d before %s: %q, %v; want %q", customer, before.Format(time.Kitchen), got, err, agent)
		}
	}
	want(joe.ID, at, "")
	add(joe.ID, at, "anna")
	second := add(joe.ID, at.Add(time.Hour), "")
	add(ann.ID, at.Add(2*time.Hour), "bernd") // the next customer's keys follow Joe's
	want(joe.ID, at, "")                      // strictly before
	want(joe.ID, at.Add(time.Minute), "anna")
	want(joe.ID, at.Add(3*time.Hour), "anna") // the newer contact had no agent
	second.Agent = "carla"
	if err := s.UpdateContact(ctx, second); err != nil {
		t.Fatal(err)
	}
	want(joe.ID, at.Add(3*time.Hour), "carla")
	second.Agent = ""
	if err := s.UpdateContact(ctx, second); err != nil {
		t.Fatal(err)
	}
	want(joe.ID, at.Add(3*time.Hour), "anna")

	rec, err := s.MergeCustomers(ctx, ann.ID, joe.ID, at)
	if err != nil {
		t.Fatal(err)
	}
	want(joe.ID, at.Add(3*time.Hour), "")
	want(ann.ID, at.Add(90*time.Minute), "anna")
	want(ann.ID, at.Add(3*time.Hour), "bernd")
	if _, err := s.UnmergeCustomers(ctx, rec.ID, at); err != nil {
		t.Fatal(err)
	}
	want(joe.ID, at.Add(3*time.Hour), "anna")
	want(ann.ID, at.Add(90*time.Minute), "")
}

func TestCRMIDsAreUnique(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	a := &Customer{CRMID: "K-1", Name: "A"}
	if err := s.CreateCustomer(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := &Customer{CRMID: "K-1", Name: "B"}
	if err := s.CreateCustomer(ctx, b); !errors.Is(err, ErrConflict) {
		t.Fatalf("second customer with K-1: %v", err)
	}
	a.CRMID = "K-2"
	if err := s.PutCustomer(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CustomerByCRMID("K-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old CRM id still indexed: %v", err)
	}
	if c, err := s.CustomerByCRMID("K-2"); err != nil || c.ID != a.ID {
		t.Errorf("K-2: %+v %v", c, err)
	}
}

func TestIdentifyOrCreateMakesOneCustomer(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	var wg sync.WaitGroup
	ids := make([]uint64, 32)
	created := make([]bool, 32)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			ids[i], created[i], err = s.IdentifyOrCreate(ctx, "phone:+4930123456", &Customer{Created: time.Now()})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	n := 0
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatalf("two customers for one number: %v", ids)
		}
		if created[i] {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d callers were told they created the customer", n)
	}
}

func TestDropContactTexts(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 3)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []uint64
	for i := range 12 {
		c := &Contact{CustomerID: uint64(i%3) + 1, Start: base.Add(time.Duration(i) * 24 * time.Hour), Subject: "s", Text: "Meine IBAN ist DE12…",
			Attachments: []Attachment{{Name: "Attest Müller.pdf", Type: "application/pdf", Size: 1000}}}
		if err := s.AppendContact(ctx, c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	n, err := s.DropContactTexts(ctx, base.Add(5*24*time.Hour))
	if err != nil || n != 5 {
		t.Fatalf("dropped %d, %v; want the 5 older contacts", n, err)
	}
	for i, id := range ids {
		c, err := s.Contact(id)
		if err != nil {
			t.Fatal(err)
		}
		if (c.Text == "") != (i < 5) || (c.Attachments == nil) != (i < 5) || c.Subject != "s" {
			t.Errorf("contact %d (day %d): %+v", id, i, c)
		}
	}
	if n, _ := s.DropContactTexts(ctx, base.Add(5*24*time.Hour)); n != 0 {
		t.Errorf("second run dropped %d", n)
	}
}

// Retention drops a reply's text and files from its outbox message once
// it was sent; one still to be sent keeps them until it goes out.
func TestDropContactTextsOfReplies(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 1)
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []uint64
	for i := range 3 {
		queued := old
		if i == 2 {
			queued = old.Add(2 * time.Hour) // queued after the limit
		}
		m := &OutboundMail{To: "joe@example.org", MessageID: fmt.Sprintf("r%d@dirigent", i), Raw: []byte("Subject: Re\r\n\r\nIhre IBAN DE12…"), Queued: queued}
		c := &Contact{CustomerID: 1, Channel: "email", Direction: "out", Start: old, Text: "Ihre IBAN DE12…", Attachments: []Attachment{{Name: "Vertrag.pdf", Type: "application/pdf", Size: 9}}}
		if err := s.QueueOutbound(ctx, m, c); err != nil {
			t.Fatal(err)
		}
		if c.OutboundID != m.ID {
			t.Fatalf("the contact names outbox message %d, want %d", c.OutboundID, m.ID)
		}
		ids = append(ids, m.ID)
	}
	for _, id := range []uint64{ids[0], ids[2]} { // the first and the last were sent
		if err := s.OutboundAttempt(ctx, id, old, nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	// The records hold no bytes: those are apart.
	s.db.View(func(tx *bolt.Tx) error {
		for _, id := range ids {
			if strings.Contains(string(tx.Bucket(bucketOutbox).Get(u64(id))), `"raw"`) {
				t.Errorf("outbox record %d holds its bytes", id)
			}
		}
		return nil
	})
	if _, err := s.DropContactTexts(ctx, old.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		m, err := s.OutboundMessage(id)
		if err != nil {
			t.Fatal(err)
		}
		if (m.Raw == nil) != (i == 0) { // sent before the limit
			t.Errorf("outbox message %d (sent: %v) keeps %d bytes", id, !m.Sent.IsZero(), len(m.Raw))
		}
	}
}

// An outbox record of schema 8 holds its bytes itself: they are read as
// they are, sent, and dropped by retention as the newer ones are.
func TestOutboxOfSchema8(t *testing.T) {
	queued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	path := storeAtSchema(t, 8, func(tx *bolt.Tx) error {
		m := OutboundMail{ID: 1, To: "joe@example.org", MessageID: "old@dirigent", Raw: []byte("Subject: alt\r\n\r\nalt"), Queued: queued, NextAttempt: queued}
		if err := putJSON(tx.Bucket(bucketOutbox), u64(1), &m); err != nil {
			return err
		}
		return tx.Bucket(bucketOutboxDue).Put(u64(1), nil)
	})
	s := openTest(t, path)
	due, err := s.DueOutbound(queued)
	if err != nil || len(due) != 1 || string(due[0].Raw) != "Subject: alt\r\n\r\nalt" {
		t.Fatalf("due %+v, %v", due, err)
	}
	if err := s.OutboundAttempt(ctx, 1, queued, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DropContactTexts(ctx, queued.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if m, err := s.OutboundMessage(1); err != nil || m.Raw != nil || m.Sent.IsZero() {
		t.Errorf("after retention: %+v, %v", m, err)
	}
}

// A reply given up leaves the queue with its bytes; one sent cannot be.
func TestGiveUpOutbound(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 1)
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	ids := queueReplies(t, s, 0, 2, at)
	if err := s.OutboundAttempt(ctx, ids[1], at, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	m, err := s.GiveUpOutbound(ctx, ids[0], at, "anna")
	if err != nil || !m.GaveUp.Equal(at) || m.GaveUpBy != "anna" {
		t.Fatalf("given up: %+v, %v", m, err)
	}
	if again, err := s.GiveUpOutbound(ctx, ids[0], at.Add(time.Hour), "bert"); err != nil || again.GaveUpBy != "anna" {
		t.Errorf("given up again: %+v, %v", again, err)
	}
	if due, err := s.DueOutbound(at.Add(time.Hour)); err != nil || len(due) != 0 {
		t.Errorf("due after giving up: %+v, %v", due, err)
	}
	if m, err := s.OutboundMessage(ids[0]); err != nil || m.Raw != nil {
		t.Errorf("its bytes: %+v, %v", m, err)
	}
	if _, err := s.GiveUpOutbound(ctx, ids[1], at, "anna"); !errors.Is(err, ErrConflict) {
		t.Errorf("giving up a reply sent: %v", err)
	}
}

// A reply the smarthost refused for good leaves the queue in the same
// transaction that stores the delivery report written for it; its bytes
// stay until retention, as a sent reply's; giving it up changes nothing.
func TestRefuseOutbound(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 1)
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	m := &OutboundMail{To: "joe@example.org", MessageID: "r@dirigent", Raw: []byte("Subject: Re\r\n\r\nx"), Queued: at, NextAttempt: at}
	if err := s.QueueOutbound(ctx, m, &Contact{CustomerID: 1, Channel: "email", Direction: "out", Start: at}); err != nil {
		t.Fatal(err)
	}
	report := &InboundMail{Received: at, Source: "smarthost", Recipients: []string{"support@example.com"}}
	if err := s.RefuseOutbound(ctx, m.ID, at, "smarthost answered 550 5.1.1: unknown", report, []byte("Subject: Undelivered\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	got, err := s.OutboundMessage(m.ID)
	if err != nil || !got.Bounced.Equal(at) || got.BounceReason != "smarthost answered 550 5.1.1: unknown" || got.Attempts != 1 || got.LastError != got.BounceReason || string(got.Raw) != "Subject: Re\r\n\r\nx" {
		t.Errorf("refused: %+v, %v", got, err)
	}
	if due, err := s.DueOutbound(at.Add(time.Hour)); err != nil || len(due) != 0 {
		t.Errorf("due after the refusal: %+v, %v", due, err)
	}
	if pending, err := s.PendingMails(); err != nil || len(pending) != 1 || pending[0] != report.ID {
		t.Errorf("the report waits to be processed: %v, %v (id %d)", pending, err, report.ID)
	}
	if again, err := s.GiveUpOutbound(ctx, m.ID, at, "anna"); err != nil || !again.GaveUp.IsZero() {
		t.Errorf("giving up a bounced reply: %+v, %v", again, err)
	}
	if _, err := s.DropContactTexts(ctx, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.OutboundMessage(m.ID); err != nil || got.Raw != nil {
		t.Errorf("after retention: %d bytes, %v", len(got.Raw), err)
	}
}

// A conversation's contacts, newest first, with or without their texts,
// among other conversations' and touchpoints and the next customer's
// journey: also one that starts a little before the conversation (a
// clock set back), not one days before.
func TestConversationContacts(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 2)
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	conv := mailConversation(t, s, at)
	// The next customer's, in the same conversation after an unmerge.
	if err := s.AppendContact(ctx, &Contact{CustomerID: 2, Channel: "email", ConversationID: conv.ID, Start: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i, c := range []struct {
		conv  uint64
		start time.Duration
	}{{conv.ID, -72 * time.Hour}, {conv.ID, -time.Hour}, {conv.ID, 0}, {conv.ID + 1, time.Minute}, {conv.ID, time.Hour}} {
		ct := &Contact{CustomerID: 1, Channel: "email", ConversationID: c.conv, Start: at.Add(c.start), Text: fmt.Sprintf("text %d", i)}
		if err := s.AppendContact(ctx, ct); err != nil {
			t.Fatal(err)
		}
		if err := s.AddTouchpoint(ctx, &Touchpoint{CustomerID: 1, Type: "web_visit", At: at.Add(c.start + time.Second)}); err != nil {
			t.Fatal(err)
		}
		if c.conv == conv.ID && c.start > -72*time.Hour {
			want = append([]uint64{ct.ID}, want...)
		}
	}
	for _, texts := range []bool{true, false} {
		var got []uint64
		err := s.ConversationContacts(1, conv, texts, func(c *Contact) bool {
			got = append(got, c.ID)
			if (c.Text != "") != texts {
				t.Errorf("contact %d with texts %v: %q", c.ID, texts, c.Text)
			}
			return true
		})
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("texts %v: %v, %v; want %v", texts, got, err, want)
		}
	}
	// Without a beginning, the whole journey; and fn stops the walk.
	var got []uint64
	err := s.ConversationContacts(1, &Conversation{ID: conv.ID}, false, func(c *Contact) bool {
		got = append(got, c.ID)
		return len(got) < 4
	})
	if err != nil || len(got) != 4 || got[3] != 2 {
		t.Errorf("without a beginning: %v, %v", got, err)
	}
}

// A reply to an address an agent gave links nothing: an address nobody
// has, or one of the customer's, is queued; another customer's is a
// conflict, stays where it is, and nothing is queued.
func TestQueueOutboundToAGivenAddress(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 2)
	if err := s.LinkIdentity(ctx, "email:eve@example.net", 2); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	for i, tc := range []struct {
		identity string
		customer uint64
		want     error
	}{
		{"email:joe.neu@example.org", 1, nil},
		{"email:eve@example.net", 2, nil},
		{"email:eve@example.net", 1, ErrConflict},
		{"email:joe.neu@example.org", 9, ErrNotFound},
	} {
		m := &OutboundMail{To: "x@example.org", ToIdentity: tc.identity, MessageID: fmt.Sprintf("g%d@dirigent", i), Raw: []byte("x"), Queued: at}
		err := s.QueueOutbound(ctx, m, &Contact{CustomerID: tc.customer, Channel: "email", Direction: "out", Start: at})
		if !errors.Is(err, tc.want) || tc.want == nil && err != nil {
			t.Errorf("%s for customer %d: %v, want %v", tc.identity, tc.customer, err, tc.want)
		}
	}
	if _, err := s.LookupIdentity("email:joe.neu@example.org"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the given address was linked: %v", err)
	}
	if owner, _ := s.LookupIdentity("email:eve@example.net"); owner != 2 {
		t.Errorf("eve's address is customer %d's", owner)
	}
	if n, _ := s.OutboxDepth(); n != 2 {
		t.Errorf("%d replies queued, want the two that went", n)
	}
}

// OldestOutbound is when the first reply still waiting was queued.
func TestOldestOutbound(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 1)
	if at, err := s.OldestOutbound(); err != nil || !at.IsZero() {
		t.Fatalf("an empty outbox: %v, %v", at, err)
	}
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	ids := queueReplies(t, s, 0, 3, at)
	if err := s.OutboundAttempt(ctx, ids[0], at.Add(time.Hour), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.OldestOutbound(); err != nil || !got.Equal(at.Add(time.Minute)) {
		t.Errorf("the oldest waiting was queued %v (%v), want %v", got, err, at.Add(time.Minute))
	}
}

// Thread reads a conversation's contacts and its replies' records at
// once, without their bytes; a record gone leaves its reply without one.
func TestThread(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 1)
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	conv := mailConversation(t, s, at)
	mail := &Contact{CustomerID: 1, Channel: "email", Direction: "in", ConversationID: conv.ID, Start: at, Text: "Bitte."}
	if err := s.AppendContact(ctx, mail); err != nil {
		t.Fatal(err)
	}
	replies := queueReplies(t, s, conv.ID, 2, at.Add(time.Minute))
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketOutbox).Delete(u64(replies[0])) }); err != nil {
		t.Fatal(err)
	}
	contacts, got, err := s.Thread(1, conv, true, 0)
	if err != nil || len(contacts) != 3 || contacts[0].OutboundID != replies[1] || contacts[2].ID != mail.ID || contacts[2].Text != "Bitte." ||
		len(got) != 1 || got[replies[1]].MessageID != "r1@dirigent" || got[replies[1]].Raw != nil {
		t.Errorf("thread %+v, replies %+v, %v", contacts, got, err)
	}
	if contacts, got, err = s.Thread(1, conv, false, 1); err != nil || len(contacts) != 1 || contacts[0].Text != "" || len(got) != 1 {
		t.Errorf("the newest alone, without texts: %+v, %+v, %v", contacts, got, err)
	}
}

// UnlinkIdentity takes an identity from its customer only, and clears it
// as given on the customer's replies.
func TestUnlinkIdentity(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 2)
	const given = "email:sales&info@example.org"
	if err := s.LinkIdentity(ctx, given, 1); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	conv := mailConversation(t, s, at)
	m := &OutboundMail{ConversationID: conv.ID, To: "sales&info@example.org", ToIdentity: given, MessageID: "u@dirigent", Raw: []byte("x"), Queued: at}
	if err := s.QueueOutbound(ctx, m, &Contact{CustomerID: 1, Channel: "email", Direction: "out", ConversationID: conv.ID, Start: at}); err != nil {
		t.Fatal(err)
	}
	// The reply is not the customer's newest contact.
	if err := s.AppendContact(ctx, &Contact{CustomerID: 1, Channel: "voice", Direction: "in", Start: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.UnlinkIdentity(ctx, IdentityChange{Identity: given, CustomerID: 2}, false); !errors.Is(err, ErrNotFound) {
		t.Errorf("taken from another customer: %v", err)
	}
	// Asked to keep one: not the only one of 1 (2 has two), one of 2's.
	for _, id := range []string{"email:b@example.org", "email:c@example.org"} {
		if err := s.LinkIdentity(ctx, id, 2); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.UnlinkIdentity(ctx, IdentityChange{Identity: given, CustomerID: 1}, true); !errors.Is(err, ErrLastIdentity) {
		t.Errorf("customer 1's only identity, kept one: %v", err)
	}
	if err := s.UnlinkIdentity(ctx, IdentityChange{Identity: "email:b@example.org", CustomerID: 2}, true); err != nil {
		t.Errorf("one of customer 2's two, kept one: %v", err)
	}
	if err := s.UnlinkIdentity(ctx, IdentityChange{Identity: "email:c@example.org", CustomerID: 2}, true); !errors.Is(err, ErrLastIdentity) {
		t.Errorf("customer 2's last, kept one: %v", err)
	}
	if err := s.UnlinkIdentity(ctx, IdentityChange{Identity: given, CustomerID: 1}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupIdentity(given); !errors.Is(err, ErrNotFound) {
		t.Errorf("still linked: %v", err)
	}
	if got, err := s.OutboundStatus(m.ID); err != nil || got.ToIdentity != "" {
		t.Errorf("the reply still names it as given: %+v, %v", got, err)
	}
}

// An identity taken from a customer is recorded on their journey with
// who took it, and a CRM import does not give it back; AddIdentity does,
// and is recorded too. AddIdentity refuses another customer's identity.
func TestUnlinkedIdentityStaysUnlinked(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	createCustomers(t, s, 3)
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	const phone, typo = "phone:+4930123456", "email:jeo@example.org"
	for _, id := range []string{phone, typo} {
		if err := s.AddIdentity(ctx, IdentityChange{Identity: id, CustomerID: 1, By: "admin", At: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.UnlinkIdentity(ctx, IdentityChange{Identity: typo, CustomerID: 1, By: "anna", At: at.Add(time.Minute)}, true); err != nil {
		t.Fatal(err)
	}
	imported := func(what string, wantSkipped bool) {
		t.Helper()
		out, err := s.ImportCustomer(ctx, ImportedCustomer{CRMID: "K1", Identities: []string{phone, typo}, Now: at})
		if err != nil || out.CustomerID != 1 || out.Created {
			t.Fatalf("%s: import %+v, %v", what, out, err)
		}
		if skipped := slices.Equal(out.Unlinked, []string{typo}); skipped != wantSkipped || len(out.Skipped) > 0 {
			t.Errorf("%s: unlinked %q, skipped %q", what, out.Unlinked, out.Skipped)
		}
		if owner, err := s.LookupIdentity(typo); wantSkipped != errors.Is(err, ErrNotFound) || !wantSkipped && owner != 1 {
			t.Errorf("%s: %s is customer %d's (%v)", what, typo, owner, err)
		}
	}
	imported("the import after the unlink", true)
	imported("the import again", true)

	// The stranger's next mail makes them customer 2, with the address.
	// The CRM's row is still customer 1's record (found by CRM id), and
	// customer 3's, without a CRM id yet, whose row names the address of
	// theirs a stranger has now first.
	if err := s.AddIdentity(ctx, IdentityChange{Identity: typo, CustomerID: 2, By: "mail", At: at}); err != nil {
		t.Fatal(err)
	}
	const phone3, typo3 = "phone:+4930999999", "email:ann@exampel.org"
	for _, id := range []string{phone3, typo3} {
		if err := s.AddIdentity(ctx, IdentityChange{Identity: id, CustomerID: 3, By: "admin", At: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.UnlinkIdentity(ctx, IdentityChange{Identity: typo3, CustomerID: 3, By: "anna", At: at}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.AddIdentity(ctx, IdentityChange{Identity: typo3, CustomerID: 2, By: "mail", At: at}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		crm, typo, phone string
		customer         uint64
	}{{"K1", typo, phone, 1}, {"K3", typo3, phone3, 3}} {
		out, err := s.ImportCustomer(ctx, ImportedCustomer{CRMID: tc.crm, Name: "Kunde", Identities: []string{tc.typo, tc.phone}, Now: at})
		if err != nil || out.CustomerID != tc.customer || !slices.Equal(out.Unlinked, []string{tc.typo}) || len(out.Skipped) > 0 {
			t.Errorf("%s, the stranger's address first: %+v, %v", tc.crm, out, err)
		}
		if stranger, err := s.Customer(2); err != nil || stranger.CRMID != "" || stranger.Name != "" {
			t.Errorf("%s: the stranger became the CRM's record: %+v, %v", tc.crm, stranger, err)
		}
	}
	// A merge of the stranger into customer 1 gives it back. Taken from
	// customer 1 again and the merge undone, it is taken from both.
	rec, err := s.MergeCustomers(ctx, 1, 2, at)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s.Customer(1); err != nil || len(c.Unlinked) != 0 {
		t.Errorf("customer 1 with the stranger merged in: %+v, %v", c, err)
	}
	if err := s.UnlinkIdentity(ctx, IdentityChange{Identity: typo, CustomerID: 1, By: "anna", At: at.Add(90 * time.Second)}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UnmergeCustomers(ctx, rec.ID, at); err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint64{1, 2} {
		if c, err := s.Customer(id); err != nil || !slices.Equal(c.Unlinked, []string{typo}) {
			t.Errorf("customer %d after the unmerge: %+v, %v", id, c, err)
		}
	}
	if _, err := s.LookupIdentity(typo); !errors.Is(err, ErrNotFound) {
		t.Errorf("after the unmerge %s is someone's: %v", typo, err)
	}

	if err := s.AddIdentity(ctx, IdentityChange{Identity: phone, CustomerID: 2, By: "admin", At: at}); !errors.Is(err, ErrConflict) {
		t.Errorf("another customer's identity added: %v", err)
	}
	if err := s.AddIdentity(ctx, IdentityChange{Identity: typo, CustomerID: 99, By: "admin", At: at}); !errors.Is(err, ErrNotFound) {
		t.Errorf("an identity added to no customer: %v", err)
	}
	if err := s.AddIdentity(ctx, IdentityChange{Identity: typo, CustomerID: 1, By: "admin", At: at.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Customer(1); err != nil || len(c.Unlinked) != 0 {
		t.Errorf("customer 1 after it was added again: %+v, %v", c, err)
	}
	imported("the import after it was added again", false)

	entries, err := s.Journey(1, time.Time{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if tp := e.Touchpoint; tp != nil {
			got = append(got, tp.Type+" "+tp.Data["identity"]+" by "+tp.Data["by"])
		}
	}
	want := []string{
		"identity_added " + typo + " by admin",
		"identity_removed " + typo + " by anna",
		"identity_removed " + typo + " by anna",
		"identity_added " + typo + " by admin",
		"identity_added " + phone + " by admin",
	}
	if !slices.Equal(got, want) {
		t.Errorf("journey, newest first:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// mailConversation stores a mail conversation of customer 1 begun at at.
func mailConversation(t *testing.T, s *Store, at time.Time) *Conversation {
	t.Helper()
	conv := &Conversation{CustomerID: 1, Channel: "email", Status: "open", Created: at}
	if err := s.PutConversation(ctx, conv); err != nil {
		t.Fatal(err)
	}
	return conv
}

// queueReplies queues n replies to customer 1 (in conversation conv, if
// not 0), a minute apart from at, and gives their IDs.
func queueReplies(t *testing.T, s *Store, conv uint64, n int, at time.Time) []uint64 {
	t.Helper()
	var ids []uint64
	for i := range n {
		m := &OutboundMail{ConversationID: conv, To: "joe@example.org", MessageID: fmt.Sprintf("r%d@dirigent", i), Raw: []byte("x"), Queued: at.Add(time.Duration(i) * time.Minute)}
		if err := s.QueueOutbound(ctx, m, &Contact{CustomerID: 1, Channel: "email", Direction: "out", ConversationID: conv, Start: m.Queued}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	return ids
}
