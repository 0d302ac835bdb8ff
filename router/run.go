package router

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// maxIdleTick bounds the loop's sleep, so Alive notices a stuck loop
// even when no deadline is near.
const maxIdleTick = time.Second

// Run handles deadlines (offer timeouts, wrap-up ends, widening, max
// wait) as they come, until ctx ends. Every operation also handles the
// deadlines that have passed, so Run only makes sure that nothing waits
// for the next operation.
func (r *Router) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		r.Tick()
		r.beat.Store(time.Now().UnixNano())
		wait := maxIdleTick
		if next := r.NextDeadline(); !next.IsZero() {
			wait = min(wait, max(next.Sub(r.deps.Now()), time.Millisecond))
		}
		t.Reset(wait)
	}
}

// Alive reports whether Run's loop has gone round recently, for the
// systemd watchdog.
func (r *Router) Alive(context.Context) error {
	last := time.Unix(0, r.beat.Load())
	if since := time.Since(last); since > 5*maxIdleTick {
		return fmt.Errorf("router loop last ran %s ago", since.Round(time.Millisecond))
	}
	return nil
}

// heartbeat is when Run's loop last went round, in unix nanoseconds.
type heartbeat = atomic.Int64
