package testrun

import (
	"testing"
	"time"
)

// Eventually waits for cond to hold, checking every 20 ms, and fails the
// test when it does not within d; what names it in the failure.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
