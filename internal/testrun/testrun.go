// Package testrun runs a component's Run loop for the length of a test,
// gives it a clock the test moves, and waits for what the test expects.
package testrun

import (
	"context"
	"sync"
	"testing"
)

// Start runs run in the background until the test ends or the returned
// stop is called (a restart, say), then cancels its context and fails the
// test if run returned an error. stop may be called more than once.
func Start(t testing.TB, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
