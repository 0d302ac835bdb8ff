package store

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// The presence a stop kept is taken up once, across a reopen.
func TestPresenceAtStopIsTakenOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "d.db")
	s := openTest(t, path)
	if p, err := s.TakePresenceAtStop(ctx); p != nil || err != nil {
		t.Fatalf("before any stop: %v %v", p, err)
	}
	kept := PresenceAtStop{At: time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC), Agents: []AgentPresence{
		{Agent: "anna", Presence: "available"}, {Agent: "bert", Presence: "away", Reason: "Pause"},
	}}
	if err := s.PutPresenceAtStop(ctx, kept); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, path)
	p, err := s.TakePresenceAtStop(ctx)
	if err != nil || p == nil || !reflect.DeepEqual(*p, kept) {
		t.Fatalf("taken %+v %v, want %+v", p, err, kept)
	}
	if p, err := s.TakePresenceAtStop(ctx); p != nil || err != nil {
		t.Errorf("taken twice: %v %v", p, err)
	}
}
