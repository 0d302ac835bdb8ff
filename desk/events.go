package desk

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// streamBuffer is how many events may wait for a slow browser; beyond
// it events are dropped for that browser, which reloads its state when
// it reconnects, instead of holding up the router's callbacks.
const streamBuffer = 64

type event struct {
	name string
	data []byte
}

type subscriber struct {
	s  *session
	ch chan event
}

// eventHub fans live updates out to the open event streams.
type eventHub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
	// dropped counts events a full stream could not take.
	dropped func()
}

func newEventHub(dropped func()) *eventHub {
	return &eventHub{subs: map[*subscriber]struct{}{}, dropped: dropped}
}

func toUser(user string) func(*session) bool {
	return func(s *session) bool { return s.user == user }
}

func toRoles(roles ...string) func(*session) bool {
	return func(s *session) bool { return s.has(roles...) }
}

// wants says whether any open stream matches to.
func (h *eventHub) wants(to func(*session) bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		if to(sub.s) {
			return true
		}
	}
	return false
}

// publish sends v as event name to every stream whose session matches
// to. It never blocks.
func (h *eventHub) publish(to func(*session) bool, name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		if !to(sub.s) {
			continue
		}
		select {
		case sub.ch <- event{name, data}:
		default:
			h.dropped()
		}
	}
}

func (h *eventHub) subscribe(s *session) *subscriber {
	sub := &subscriber{s: s, ch: make(chan event, streamBuffer)}
	h.mu.Lock()
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
	return sub
}

func (h *eventHub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
}

func (h *eventHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// streamEvents is GET /api/desk/events: server-sent events for the
// session's user until the browser goes, the session ends or the server
// stops.
//
//	event: offer     data: a task on offer, with its deadline
//	event: revoke    data: {"id": task}
//	event: tasks     data: the agent's tasks changed (reload /api/desk/tasks)
//	event: presence  data: an admin changed the agent's presence
//	event: chat      data: the customer in one of the agent's chats
//	event: delivery  data: {"id": task}: a reply of its thread was sent, failed an attempt, bounced or was stopped
//	event: wallboard data: the wallboard (supervisors and admins, every 2 s)
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming not supported")
		return
	}
	sub := s.events.subscribe(sessionOf(r))
	defer s.events.unsubscribe(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy must pass events on at once
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	flusher.Flush()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case e := <-sub.ch:
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.name, e.data)
		case <-keepAlive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		case <-r.Context().Done():
			return
		case <-sub.s.ended: // logged out: the browser learns it on reconnecting
			return
		case <-s.stopping:
			return
		}
		flusher.Flush()
	}
}
