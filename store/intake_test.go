package store

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// acceptN accepts n messages concurrently, their bodies numbered from
// first, and returns when all are acknowledged.
func acceptN(t *testing.T, s *Store, first, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := first; i < first+n; i++ {
		wg.Go(func() {
			m := &InboundMail{Received: time.Now().UTC(), Source: "smtp", From: "kunde@example.org", Recipients: []string{"support@example.com"}}
			errs <- s.Accept(ctx, m, []byte(fmt.Sprintf("Subject: %d\r\n\r\nNachricht %d\r\n", i, i)))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// bodies returns the message numbers in the store, failing on any twice.
func bodies(t *testing.T, s *Store) map[int]bool {
	t.Helper()
	n, err := s.MailCount()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for id := uint64(1); id <= uint64(n); id++ {
		_, raw, err := s.Mail(id)
		if err != nil {
			t.Fatalf("mail %d: %v", id, err)
		}
		var subject, body int
		if _, err := fmt.Sscanf(string(raw), "Subject: %d\r\n\r\nNachricht %d", &subject, &body); err != nil || subject != body {
			t.Fatalf("mail %d damaged: %q", id, raw)
		}
		if seen[body] {
			t.Fatalf("message %d stored twice", body)
		}
		seen[body] = true
	}
	return seen
}

func wantBodies(t *testing.T, s *Store, n int) {
	t.Helper()
	seen := bodies(t, s)
	if len(seen) != n {
		t.Fatalf("%d messages in the store, want %d", len(seen), n)
	}
	for i := range n {
		if !seen[i] {
			t.Fatalf("message %d missing", i)
		}
	}
}

func TestIntakeReachesTheStoreOnceAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	s := openTest(t, path)
	acceptN(t, s, 0, 100)
	// Close may come before the applier got to everything: the next Open
	// applies the rest.
	s.Close()
	s = openTest(t, path)
	wantBodies(t, s, 100)
	acceptN(t, s, 100, 10)
	s.Close()
	s = openTest(t, path)
	wantBodies(t, s, 110)
	// What earlier processes logged is applied and its files are gone:
	// only this process's (empty) generation is left.
	if gens, err := intakeFiles(path); err != nil || len(gens) != 1 {
		t.Errorf("intake files %v, %v; want only the current one", gens, err)
	}
	if pending, _ := s.PendingMails(); len(pending) != 110 {
		t.Errorf("%d mails waiting for processing, want 110", len(pending))
	}
}

func TestIntakeCutsATornTail(t *testing.T) {
	// A crash in the middle of a write leaves the start of a record that
	// was never acknowledged, at the file's end or before the zeros the
	// log is grown by.
	for name, zeros := range map[string]int{"at the end": 0, "before zeros": intakeGrow} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "d.db")
			s := openTest(t, path)
			acceptN(t, s, 0, 5)
			s.Close()
			gens, err := intakeFiles(path)
			if err != nil || len(gens) == 0 {
				t.Fatalf("no intake log: %v", err)
			}
			rec, err := encodeIntake(&InboundMail{Source: "smtp"}, []byte("Subject: 99\r\n\r\nNachricht 99\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(intakeName(path, gens[len(gens)-1]), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(append(rec[:len(rec)-3], make([]byte, zeros)...))
			f.Close()
			wantAcrossRestarts(t, path, 5, 5)
		})
	}
}

// The log grows in steps of zeros, so that most syncs leave its size
// alone; a clean stop cuts them off again.
func TestIntakeGrowsAheadOfItsRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	s := openTest(t, path)
	acceptN(t, s, 0, 3)
	name := intakeName(path, s.intake.gen)
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if n := size(); n < intakeGrow {
		t.Errorf("intake log of %d bytes, want it grown by %d", n, intakeGrow)
	}
	s.Close()
	if n := size(); n >= intakeGrow {
		t.Errorf("intake log of %d bytes after a clean stop, want only its records", n)
	}
}

func TestIntakeRotatesAndRemovesAppliedGenerations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	s := openTest(t, path)
	s.intake.rotate = 200 // about one record per generation
	for i := range 30 {
		acceptN(t, s, i, 1)
	}
	if err := s.intake.flush(); err != nil {
		t.Fatal(err)
	}
	wantBodies(t, s, 30)
	gens, err := intakeFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	// Applied generations are gone; the one being written and at most the
	// one before it remain.
	if len(gens) > 2 {
		t.Errorf("%d intake files left after everything was applied: %v", len(gens), gens)
	}
	s.Close()
	wantAcrossRestarts(t, path, 30, 3)
}

// wantAcrossRestarts opens the closed store at path, wants the have
// messages it was given, gives it more, and wants them all after the
// next restart too.
func wantAcrossRestarts(t *testing.T, path string, have, more int) {
	t.Helper()
	s := openTest(t, path)
	wantBodies(t, s, have)
	acceptN(t, s, have, more)
	s.Close()
	s = openTest(t, path)
	wantBodies(t, s, have+more)
}

func TestSnapshotHoldsEveryAcceptedMail(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "d.db"))
	acceptN(t, s, 0, 50)
	f, err := os.Create(filepath.Join(dir, "backup.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The backup opened on its own, without the intake log beside it.
	b := openTest(t, filepath.Join(dir, "backup.db"))
	wantBodies(t, b, 50)
}

func TestQuietIntakeLogIsDeleted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	s, err := Open(Options{Path: path, Logger: slog.New(slog.DiscardHandler), intakeIdle: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acceptN(t, s, 0, 3)
	first, err := intakeFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	// Once nothing arrives for a while, the generation holding the three
	// raw messages is closed, applied and deleted.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		gens, err := intakeFiles(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(gens) == 1 && gens[0] > first[len(first)-1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("intake files %v still there after 10 s of quiet (were %v)", gens, first)
		}
	}
	wantBodies(t, s, 3)
}

func FuzzReadIntake(f *testing.F) {
	rec, _ := encodeIntake(&InboundMail{Source: "smtp", From: "a@b"}, []byte("Subject: x\r\n\r\ny"))
	f.Add(rec)
	f.Add(rec[:10])
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Whatever a damaged file holds is a record, the end, or a torn
		// tail; never a panic or a huge allocation.
		_, _, _, _ = readIntake(bufio.NewReader(bytes.NewReader(b)))
	})
}
