// Package testrun runs a component's Run loop for the length of a test,
// gives it a clock the test moves, and waits for what the test expects.
package testrun

import (
	"context"
	"testing"
)

// Start runs run in the background until the test ends, then cancels its
// context and fails the test if run returned an error.
func Start(t testing.TB, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
