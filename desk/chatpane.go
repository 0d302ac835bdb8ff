package desk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"dirigent/store"
)

// Chats is the agent's half of the message channel (the chat package;
// the desk must not import it): answers, typing, ending a chat, and its
// transcript, addressed by the conversation of the chat task's contact.
type Chats interface {
	Send(ctx context.Context, conversationID uint64, agent, text string) error
	Typing(ctx context.Context, conversationID uint64, agent string, active bool) error
	End(ctx context.Context, conversationID uint64, agent string) error
	Transcript(conversationID uint64) ([]store.ChatMessage, error)
}

// ChatEvent is what a customer did in a chat, as the daemon passes it
// on from the message channel.
type ChatEvent struct {
	Kind           string    `json:"kind"` // "message", "typing" or "ended"
	ConversationID uint64    `json:"conversation_id"`
	TaskID         uint64    `json:"task_id"`
	Agent          string    `json:"-"`
	Seq            uint64    `json:"seq,omitempty"`
	Text           string    `json:"text,omitempty"`
	Active         bool      `json:"active,omitempty"`
	At             time.Time `json:"at"`
}

// OnChat shows a customer's chat message, typing or leaving on the desk
// of the chat's agent. It must not block: it only publishes.
func (s *Server) OnChat(e ChatEvent) {
	if e.Agent == "" {
		return // still waiting for an agent: nobody's desk shows it yet
	}
	s.events.publish(toUser(e.Agent), "chat", e)
}

// chatTask finds the session agent's chat task and its conversation,
// answering the error itself.
func (s *Server) chatTask(w http.ResponseWriter, r *http.Request) (deskTask, uint64, bool) {
	t, ok := s.myTask(w, r, "")
	if !ok {
		return t, 0, false
	}
	if t.State == "offered" {
		writeError(w, http.StatusConflict, fmt.Sprintf("task %d is offered, not assigned", t.ID))
		return t, 0, false
	}
	contact, err := s.deps.Store.Contact(t.ID)
	if err != nil {
		writeStoreError(w, err)
		return t, 0, false
	}
	if contact.Channel != "message" || contact.ConversationID == 0 {
		writeError(w, http.StatusConflict, fmt.Sprintf("task %d is not a chat (%s)", t.ID, contact.Channel))
		return t, 0, false
	}
	if s.deps.Chats == nil {
		writeError(w, http.StatusServiceUnavailable, "the message channel is not running")
		return t, 0, false
	}
	return t, contact.ConversationID, true
}

// chatError: a chat that has ended is 409, anything else 500. The
// message channel's ErrEnded is the store's ErrChatEnded.
func chatError(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrChatEnded) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}

type chatRequest struct {
	Text string `json:"text"`
}

// sendChat is POST /api/desk/tasks/{id}/chat: the agent's message.
func (s *Server) sendChat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if err := decodeBody(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	text := strings.TrimSpace(req.Text)
	if text == "" {
		writeError(w, http.StatusBadRequest, "text is empty")
		return
	}
	if len(text) > maxChatText {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("text longer than %d bytes", maxChatText))
		return
	}
	t, conv, ok := s.chatTask(w, r)
	if !ok {
		return
	}
	if err := s.deps.Chats.Send(r.Context(), conv, t.Agent, text); err != nil {
		chatError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"id": t.ID, "status": "sent"})
}

// maxChatText bounds an agent's chat message, as the message channel does.
const maxChatText = 64 << 10

type typingRequest struct {
	Active bool `json:"active"`
}

// chatTyping is PUT /api/desk/tasks/{id}/chat/typing.
func (s *Server) chatTyping(w http.ResponseWriter, r *http.Request) {
	var req typingRequest
	if err := decodeBody(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	t, conv, ok := s.chatTask(w, r)
	if !ok {
		return
	}
	if err := s.deps.Chats.Typing(r.Context(), conv, t.Agent, req.Active); err != nil {
		chatError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": t.ID, "typing": req.Active})
}

// endChat is POST /api/desk/tasks/{id}/chat/end: the agent closes the
// chat; the task still wants its wrap-up.
func (s *Server) endChat(w http.ResponseWriter, r *http.Request) {
	t, conv, ok := s.chatTask(w, r)
	if !ok {
		return
	}
	if err := s.deps.Chats.End(r.Context(), conv, t.Agent); err != nil {
		chatError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": t.ID, "status": "ended"})
}
