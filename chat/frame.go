package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Frame types a customer's browser sends.
const (
	FrameHello      = "hello"
	FrameMessage    = "message"
	FrameTyping     = "typing"
	FrameTranscript = "transcript"
	FrameEnd        = "end"
)

// Frame types dirigent sends (besides message and typing).
const (
	FrameWelcome     = "welcome"
	FrameAgentJoined = "agent_joined"
	FrameNotice      = "notice"
	FrameError       = "error"
)

// Limits of fields other than a message's text, which the configuration
// bounds.
const (
	maxRefBytes   = 64
	maxNameRunes  = 100
	maxEmailBytes = 254
	maxPhoneBytes = 40
	maxQueueBytes = 64
	tokenBytes    = 43 // 32 random bytes, base64url without padding
)

// ClientFrame is one frame from a customer's browser, as DecodeFrame
// accepts it. Which fields a type may carry is in the package comment.
type ClientFrame struct {
	Type string `json:"type"`
	// hello
	Session string  `json:"session,omitempty"`
	LastSeq *uint64 `json:"last_seq,omitempty"`
	Queue   string  `json:"queue,omitempty"`
	Lang    string  `json:"lang,omitempty"`
	Name    string  `json:"name,omitempty"`
	Email   string  `json:"email,omitempty"` // also transcript
	Phone   string  `json:"phone,omitempty"`
	// message
	ID   string `json:"id,omitempty"`
	Text string `json:"text,omitempty"`
	// typing
	Active *bool `json:"active,omitempty"`
}

// ServerFrame is one frame dirigent sends to the browser.
type ServerFrame struct {
	Type    string    `json:"type"`
	Session string    `json:"session,omitempty"` // welcome
	Resumed bool      `json:"resumed,omitempty"` // welcome
	Lang    string    `json:"lang,omitempty"`    // welcome
	Queue   string    `json:"queue,omitempty"`   // welcome
	Seq     uint64    `json:"seq,omitempty"`     // welcome: the latest; message: its number
	From    string    `json:"from,omitempty"`    // message: customer, agent or system
	Name    string    `json:"name,omitempty"`    // message, typing, agent_joined: the agent's name
	Text    string    `json:"text,omitempty"`    // message, notice, error
	ID      string    `json:"id,omitempty"`      // message: the customer's own id, as an acknowledgement
	At      time.Time `json:"at,omitzero"`       // message
	Active  bool      `json:"active,omitempty"`  // typing
	Code    string    `json:"code,omitempty"`    // notice, error
}

// BadFrame is why a frame was refused; Reason is the metrics label and
// the error frame's code.
type BadFrame struct {
	Reason string
	Msg    string
}

func (e *BadFrame) Error() string { return e.Msg }

func frameErr(reason, format string, args ...any) error {
	return &BadFrame{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// allowed lists, per client frame type, the fields it may carry.
var allowed = map[string]map[string]bool{
	FrameHello:      {"type": true, "session": true, "last_seq": true, "queue": true, "lang": true, "name": true, "email": true, "phone": true},
	FrameMessage:    {"type": true, "id": true, "text": true},
	FrameTyping:     {"type": true, "active": true},
	FrameTranscript: {"type": true, "email": true},
	FrameEnd:        {"type": true},
}

// DecodeFrame parses one frame from a customer's browser strictly: one
// JSON object of a known type with only that type's fields, valid UTF-8,
// and every field within its limits; a message's text must have at most
// maxText bytes. Any other input is a *BadFrame.
func DecodeFrame(data []byte, maxText int) (ClientFrame, error) {
	var f ClientFrame
	if !utf8.Valid(data) {
		return f, frameErr("encoding", "frame is not valid UTF-8")
	}
	var fields map[string]json.RawMessage
	if err := decodeStrict(data, &fields); err != nil || fields == nil {
		return f, frameErr("syntax", "frame is not a JSON object")
	}
	var typ string
	if raw, ok := fields["type"]; ok && json.Unmarshal(raw, &typ) != nil {
		return f, frameErr("syntax", "type is not a string")
	}
	known, ok := allowed[typ]
	if !ok {
		return f, frameErr("type", "unknown frame type %q (want hello, message, typing, transcript or end)", clip(typ))
	}
	for k := range fields {
		if !known[k] {
			return f, frameErr("field", "a %s frame has no field %q", typ, clip(k))
		}
	}
	if err := decodeStrict(data, &f); err != nil {
		return ClientFrame{}, frameErr("syntax", "frame has a field of the wrong type: %v", trimJSONError(err))
	}
	switch f.Type {
	case FrameHello:
		switch {
		case f.Session != "" && !validToken(f.Session):
			return ClientFrame{}, frameErr("field", "session is not a session token")
		case f.LastSeq != nil && f.Session == "":
			return ClientFrame{}, frameErr("field", "last_seq without session")
		case len(f.Queue) > maxQueueBytes || !printable(f.Queue, false):
			return ClientFrame{}, frameErr("field", "queue is not a queue name")
		case f.Lang != "" && f.Lang != "de" && f.Lang != "en":
			return ClientFrame{}, frameErr("field", "lang %q: want de or en", clip(f.Lang))
		case utf8.RuneCountInString(f.Name) > maxNameRunes || !printable(f.Name, false):
			return ClientFrame{}, frameErr("field", "name longer than %d characters or with control characters", maxNameRunes)
		case len(f.Email) > maxEmailBytes || !printable(f.Email, false):
			return ClientFrame{}, frameErr("field", "email is not an e-mail address")
		case len(f.Phone) > maxPhoneBytes || !printable(f.Phone, false):
			return ClientFrame{}, frameErr("field", "phone is not a phone number")
		}
	case FrameMessage:
		switch {
		case f.ID == "" || len(f.ID) > maxRefBytes || !printable(f.ID, false):
			return ClientFrame{}, frameErr("field", "id: want 1–%d printable characters", maxRefBytes)
		case len(f.Text) > maxText:
			return ClientFrame{}, frameErr("too_large", "message of %d bytes; at most %d", len(f.Text), maxText)
		case strings.TrimSpace(f.Text) == "":
			return ClientFrame{}, frameErr("field", "empty message")
		case !printable(f.Text, true):
			return ClientFrame{}, frameErr("field", "message with control characters")
		}
	case FrameTyping:
		if f.Active == nil {
			return ClientFrame{}, frameErr("field", "typing needs active")
		}
	case FrameTranscript:
		if f.Email == "" || len(f.Email) > maxEmailBytes || !printable(f.Email, false) {
			return ClientFrame{}, frameErr("field", "transcript needs an e-mail address")
		}
	}
	return f, nil
}

// decodeStrict decodes exactly one JSON value with no unknown fields and
// nothing after it.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the object")
	}
	return nil
}

func trimJSONError(err error) string {
	return clip(strings.TrimPrefix(err.Error(), "json: "))
}

// clip keeps what a client sent short in errors and logs.
func clip(s string) string {
	if len(s) > 40 {
		for i := 40; i > 0; i-- {
			if utf8.RuneStart(s[i]) {
				return s[:i] + "…"
			}
		}
	}
	return s
}

// printable reports whether s has no control characters (newlines and
// tabs allowed when multiline).
func printable(s string, multiline bool) bool {
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) || r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

func validToken(s string) bool {
	if len(s) != tokenBytes {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
