// Package chat is the message channel: web chat with customers through
// an embeddable widget, and the conversation model that SIP MESSAGE
// (RFC 3428) shares with it. A chat session is a conversation (channel
// "message") of a customer identified through the journey; its first
// customer message becomes a contact and a router task; every message is
// stored before it is acknowledged; the transcript becomes the contact's
// text when the chat ends.
//
// The widget is served on its own listener (chat.listen), apart from the
// desk, so that a site can expose only the chat to the internet:
//
//	<script src="https://chat.example.com/widget.js" data-queue="support" async></script>
//
// # Frame protocol
//
// The widget talks to GET /ws over WebSocket, one JSON object per text
// message. Unknown types, unknown fields, fields of the wrong type, text
// beyond chat.max_message_bytes and invalid UTF-8 are refused with an
// error frame, after which the server closes that connection only (the
// session can be resumed).
//
// From the browser:
//
//	{"type":"hello", "session":TOKEN, "last_seq":N, "queue":"support", "lang":"de"|"en",
//	 "name":"…", "email":"…", "phone":"…"}
//	    first frame of every connection; without session a new session starts,
//	    with session (and the last seq the page has seen) it resumes and
//	    receives every message after last_seq. name/email/phone identify the
//	    customer for a new session (e-mail first, then phone). lang is the
//	    language of the notices and the transcript; German when absent.
//	{"type":"message", "id":"client-id", "text":"…"}
//	    id (1–64 characters) is the page's own id: the server acknowledges
//	    by sending the stored message back with it, and a message sent again
//	    with the same id is stored once.
//	{"type":"typing", "active":true|false}
//	{"type":"transcript", "email":"…"}  mail the transcript here at the end
//	{"type":"end"}                      the customer closes the chat
//
// From dirigent:
//
//	{"type":"welcome", "session":TOKEN, "resumed":bool, "seq":N, "lang":…, "queue":…}
//	{"type":"message", "seq":N, "from":"customer"|"agent"|"system", "name":…, "text":…, "id":…, "at":…}
//	{"type":"typing", "active":bool, "name":…}
//	{"type":"agent_joined", "name":…}
//	{"type":"notice", "code":"closed"|"nobody"|"queued"|"returned"|"ended"|"transcript", "text":…}
//	{"type":"error", "code":"syntax"|"type"|"field"|"too_large"|"encoding"|"rate"|"sessions"|"identity"|"hello"|"ended"|"internal", "text":…}
//
// # Agent side
//
// The desk (and only the desk) drives the agent's half through
// Channel.Send, Typing, End and Transcript, addressed by the conversation
// ID of the task's contact, and hears customers through Deps.OnCustomer or
// Channel.Subscribe. Accepting a chat task is router.Accept, as for any
// task; the channel learns of it from the router's events (TaskEvent) and
// tells the customer who joined. A desk would: Subscribe(agent) for each
// logged-in agent's live stream; on accept, show Transcript(conversation)
// (what the customer wrote while waiting); send with Send and Typing; and
// at the end call End (the customer is told, the transcript stored and
// mailed if asked) before the task's wrap-up through the router. A chat
// the customer ended stays a task; Send then answers ErrEnded.
//
// chat imports router, journey, store and internal/clientaddr; it never imports another
// channel (sip, mail, desk): mail and SIP replies are injected functions.
package chat
