package store

import "time"

// Customer is a person or company.
type Customer struct {
	ID         uint64            `json:"id"`
	CRMID      string            `json:"crm_id,omitempty"`
	Name       string            `json:"name,omitempty"`
	ValueTier  int               `json:"value_tier,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Created    time.Time         `json:"created"`
	// Unlinked are identities a person took from the customer
	// (UnlinkIdentity), which a CRM import must not give back; AddIdentity
	// does.
	Unlinked []string `json:"unlinked_identities,omitempty"`
}

// Contact is one interaction on one channel: a call, a mail, a chat.
type Contact struct {
	ID             uint64    `json:"id"`
	CustomerID     uint64    `json:"customer_id"`
	Channel        string    `json:"channel"`   // voice, email, message
	Direction      string    `json:"direction"` // in, out
	ConversationID uint64    `json:"conversation_id,omitempty"`
	TaskID         uint64    `json:"task_id,omitempty"`
	Queue          string    `json:"queue,omitempty"`
	Intent         string    `json:"intent,omitempty"`
	Agent          string    `json:"agent,omitempty"`
	Start          time.Time `json:"start"`
	Answered       time.Time `json:"answered,omitzero"`
	End            time.Time `json:"end,omitzero"`
	Outcome        string    `json:"outcome,omitempty"`
	WrapCode       string    `json:"wrap_code,omitempty"`
	Note           string    `json:"note,omitempty"`
	Subject        string    `json:"subject,omitempty"`
	Text           string    `json:"text,omitempty"`
	MailID         uint64    `json:"mail_id,omitempty"`     // the stored message an e-mail contact came from
	OutboundID     uint64    `json:"outbound_id,omitempty"` // the outbox message a reply went out as
	// Attachments are the files the message came with, or went with, in
	// its order; they stay in the stored message (MailID, OutboundID).
	Attachments []Attachment `json:"attachments,omitempty"`
	// BounceOf: this mail is a delivery report saying that the reply of
	// contact BounceOf did not reach the customer.
	BounceOf uint64 `json:"bounce_of,omitempty"`
}

// OutcomeAutomatic is the outcome of a contact nobody is to answer: mail
// a program sent (an auto-reply, a list's mail, a bounce of an
// acknowledgement).
const OutcomeAutomatic = "automatic"

// Attachment is a file that came with a mail, or went with a reply.
type Attachment struct {
	Name string `json:"name,omitempty"`
	Type string `json:"type"`
	Size int64  `json:"size"`
}

// File is a file an agent's reply carries: its contents, which the
// outbox keeps in the composed message, and its Attachment entry.
type File struct {
	Name string
	Type string
	Data []byte
}

// Touchpoint is an event from another system: a web visit, an order, a
// survey score; or dirigent's own record of what a person did to the
// customer's identities (TouchpointIdentityAdded, TouchpointIdentityRemoved).
type Touchpoint struct {
	ID         uint64            `json:"id"`
	CustomerID uint64            `json:"customer_id"`
	Type       string            `json:"type"`
	At         time.Time         `json:"at"`
	Data       map[string]string `json:"data,omitempty"`
}

// Conversation is a mail thread or a chat session.
type Conversation struct {
	ID         uint64    `json:"id"`
	CustomerID uint64    `json:"customer_id"`
	Channel    string    `json:"channel"`
	Subject    string    `json:"subject,omitempty"`
	Tag        string    `json:"tag,omitempty"` // ticket tag such as DG-1234
	Status     string    `json:"status,omitempty"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
}

// JourneyEntry is one step of a journey: exactly one of its fields is set.
type JourneyEntry struct {
	Contact    *Contact    `json:"contact,omitempty"`
	Touchpoint *Touchpoint `json:"touchpoint,omitempty"`
}

// At is when the entry happened.
func (e JourneyEntry) At() time.Time {
	if e.Contact != nil {
		return e.Contact.Start
	}
	return e.Touchpoint.At
}
