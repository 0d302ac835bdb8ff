package mail

import (
	"context"
	"errors"
	"time"

	"dirigent/journey"
	"dirigent/store"
)

// SendTranscript queues a chat transcript for the customer at to: a
// plain-text mail through the outbox, retried like agents' replies, and
// an outgoing e-mail contact in the customer's journey. The message
// channel calls it when a chat ends (it is injected there, so that the
// channels do not import each other).
func (c *Channel) SendTranscript(ctx context.Context, to, subject, text string) error {
	if c.cfg.Smarthost.From == "" {
		return errors.New("mail: no sender address for transcripts (set mail.from or mail.addresses)")
	}
	addr, err := journey.Email(to)
	if err != nil {
		return err
	}
	customer, _, err := c.deps.Journey.Identify(ctx, journey.KindEmail, addr, "")
	if err != nil {
		return err
	}
	msgID, err := c.newMessageID()
	if err != nil {
		return err
	}
	raw, err := c.compose(addr, subject, msgID, "", nil, "auto-generated", text, nil)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	m := &store.OutboundMail{From: c.cfg.Smarthost.From, To: addr, MessageID: msgID, Raw: raw, Queued: now, NextAttempt: now}
	contact := &store.Contact{
		CustomerID: customer.ID, Channel: "email", Direction: "out", Start: now, End: now, Subject: subject, Text: text,
	}
	if err := c.deps.Store.QueueOutbound(ctx, m, contact); err != nil {
		return err
	}
	c.stored(0) // wake the sender
	return nil
}
