package store

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestHelperAppender is not a test: TestKill9LosesNoAcknowledgedContact
// runs the test binary as a writer process through it.
func TestHelperAppender(t *testing.T) {
	path := os.Getenv("DIRIGENT_CRASH_STORE")
	if path == "" {
		t.Skip("helper process for TestKill9LosesNoAcknowledgedContact")
	}
	s, err := Open(Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	createCustomers(t, s, 64)
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c := &Contact{CustomerID: uint64(w) + 1, Channel: "email", Start: time.Now(), Text: "Guten Tag, meine Rechnung stimmt nicht."}
				if err := s.AppendContact(ctx, c); err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(1)
				}
				// Acknowledged only now, after the fsynced commit.
				mu.Lock()
				fmt.Fprintln(out, c.ID)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestKill9LosesNoAcknowledgedContact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppender$")
		cmd.Env = append(os.Environ(), "DIRIGENT_CRASH_STORE="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var acked []uint64
		sc := bufio.NewScanner(stdout)
		deadline := time.Now().Add(20 * time.Second)
		for len(acked) < 2000 && time.Now().Before(deadline) && sc.Scan() {
			id, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				t.Fatalf("helper said %q", sc.Text())
			}
			acked = append(acked, id)
		}
		// Kill mid-stream, while writers are still inside commits.
		cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() {
			if id, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
				acked = append(acked, id) // printed before the kill landed
			}
		}
		cmd.Wait()
		if len(acked) < 100 {
			t.Fatalf("round %d: only %d acknowledgements before the deadline", round, len(acked))
		}
		s, err := Open(Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		for _, id := range acked {
			if _, err := s.Contact(id); err != nil {
				t.Fatalf("round %d: acknowledged contact %d lost: %v", round, id, err)
			}
		}
		s.Close()
		if err := Verify(path); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		t.Logf("round %d: %d acknowledged contacts all present after kill -9", round, len(acked))
	}
}
