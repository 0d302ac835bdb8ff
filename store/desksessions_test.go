package store

import (
	"crypto/sha256"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func sessionHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Desk sessions are kept by the hash of their secret, survive a reopen,
// are touched forward only, and go when deleted or idle.
func TestDeskSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	s := openTest(t, path)
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	anna := &DeskSession{Hash: sessionHash("anna's secret"), User: "anna", Roles: []string{"agent"}, CSRF: "csrf-a", Created: at, LastUsed: at}
	sven := &DeskSession{Hash: sessionHash("sven's secret"), User: "sven", Roles: []string{"supervisor", "admin"}, CSRF: "csrf-s", Created: at, LastUsed: at.Add(time.Hour)}
	for _, ds := range []*DeskSession{anna, sven} {
		if err := s.PutDeskSession(ctx, ds); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []*DeskSession{
		{Hash: []byte("anna's secret"), User: "anna"}, // the secret itself, not its hash
		{Hash: sessionHash("x")},
	} {
		if err := s.PutDeskSession(ctx, bad); err == nil {
			t.Errorf("PutDeskSession(%q, user %q) accepted", bad.Hash, bad.User)
		}
	}
	want := func(what string, wants ...*DeskSession) {
		t.Helper()
		got, err := s.DeskSessions()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(wants) {
			t.Fatalf("%s: %d sessions %+v, want %d", what, len(got), got, len(wants))
		}
		for _, w := range wants {
			i := slices.IndexFunc(got, func(g DeskSession) bool { return string(g.Hash) == string(w.Hash) })
			if i < 0 {
				t.Errorf("%s: %s's session missing", what, w.User)
				continue
			}
			g := got[i]
			if g.User != w.User || !slices.Equal(g.Roles, w.Roles) || g.CSRF != w.CSRF || !g.Created.Equal(w.Created) || !g.LastUsed.Equal(w.LastUsed) {
				t.Errorf("%s: %+v, want %+v", what, g, *w)
			}
		}
	}
	want("stored", anna, sven)

	// Touching moves last use forward only and brings back nothing.
	gone := sessionHash("logged out")
	err := s.TouchDeskSessions(ctx, []DeskSessionUse{
		{anna.Hash, at.Add(2 * time.Minute)},
		{sven.Hash, at}, // older than stored
		{gone, at.Add(time.Minute)},
	})
	if err != nil {
		t.Fatal(err)
	}
	anna.LastUsed = at.Add(2 * time.Minute)
	want("touched", anna, sven)
	if err := s.TouchDeskSessions(ctx, []DeskSessionUse{{[]byte("short"), at}}); err == nil {
		t.Error("touch of a hash that is no SHA-256 accepted")
	}

	// What was stored is there after a restart.
	s.Close()
	s = openTest(t, path)
	want("after reopening", anna, sven)

	// Idle sessions go: anna was last seen at 9:02, sven at 10:00; a
	// sweep that finds none writes nothing.
	txid := func() (id int) {
		s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
		return id
	}
	before := txid()
	if n, err := s.DeleteIdleDeskSessions(ctx, at); n != 0 || err != nil || txid() != before {
		t.Fatalf("DeleteIdleDeskSessions with none idle: %d, %v; transaction %d → %d", n, err, before, txid())
	}
	if n, err := s.DeleteIdleDeskSessions(ctx, at.Add(time.Hour)); n != 1 || err != nil {
		t.Fatalf("DeleteIdleDeskSessions: %d, %v", n, err)
	}
	want("after the idle one went", sven)
	if err := s.DeleteDeskSessions(ctx, sven.Hash, gone); err != nil {
		t.Fatal(err)
	}
	want("after logout")
	if err := s.DeleteDeskSessions(ctx); err != nil {
		t.Errorf("deleting nothing: %v", err)
	}
}

// A record that does not decode is listed by its hash alone, for the
// desk to drop, and the sweep removes it.
func TestDeskSessionUndecodable(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	h := sessionHash("broken")
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketDeskSessions).Put(h, []byte("{not json")) }); err != nil {
		t.Fatal(err)
	}
	got, err := s.DeskSessions()
	if err != nil || len(got) != 1 || string(got[0].Hash) != string(h) || got[0].User != "" {
		t.Fatalf("DeskSessions: %+v, %v", got, err)
	}
	if err := s.TouchDeskSessions(ctx, []DeskSessionUse{{h, time.Now()}}); err != nil {
		t.Errorf("touching it: %v", err)
	}
	if n, err := s.DeleteIdleDeskSessions(ctx, time.Time{}); n != 1 || err != nil {
		t.Errorf("DeleteIdleDeskSessions: %d, %v", n, err)
	}
}

// A store written by a schema-7 dirigent gets the desk sessions' bucket
// on open, and its data stays.
func TestMigrationAddsDeskSessions(t *testing.T) {
	path := storeAtSchema(t, 7, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketDeskSessions) != nil {
			t.Error("schema 7 has desk sessions already")
		}
		return tx.Bucket(bucketCustomers).Put(u64(1), []byte(`{"id":1,"name":"Joe"}`))
	})
	s := openTest(t, path)
	s.db.View(func(tx *bolt.Tx) error {
		if v, err := schemaVersion(tx); v != len(migrations) || err != nil {
			t.Errorf("schema version %d, %v; want %d", v, err, len(migrations))
		}
		return nil
	})
	if c, err := s.Customer(1); err != nil || c.Name != "Joe" {
		t.Errorf("customer after the migration: %+v, %v", c, err)
	}
	if got, err := s.DeskSessions(); len(got) != 0 || err != nil {
		t.Errorf("sessions after the migration: %v, %v", got, err)
	}
	ds := &DeskSession{Hash: sessionHash("s"), User: "anna", Roles: []string{"agent"}, Created: time.Now(), LastUsed: time.Now()}
	if err := s.PutDeskSession(ctx, ds); err != nil {
		t.Errorf("storing a session after the migration: %v", err)
	}
}
