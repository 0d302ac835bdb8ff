package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

// ticketTag finds a conversation's tag, [#DG-123], in a subject.
var ticketTag = regexp.MustCompile(`\[#DG-(\d+)\]`)

// processPending processes every stored message not yet processed, in
// arrival order.
func (c *Channel) processPending(ctx context.Context) {
	ids, err := c.deps.Store.PendingMails()
	if err != nil {
		c.deps.Logger.Error("listing stored mail", "err", err)
		return
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		outcome, err := c.process(ctx, id)
		c.metrics.processed.WithLabelValues(outcome).Inc()
		if err != nil {
			c.deps.Logger.Error("processing mail", "mail", id, "outcome", outcome, "err", err)
		}
	}
}

// process turns one stored message into a contact of its customer, in
// its conversation, and (unless a program sent it) a task for the
// universal queue. It returns the outcome for the metrics.
func (c *Channel) process(ctx context.Context, id uint64) (outcome string, err error) {
	m, raw, err := c.deps.Store.Mail(id)
	if err != nil {
		return "error", err
	}
	p, err := Parse(raw)
	if err != nil {
		// Kept in the store for a better parser; processed so it does not
		// come back on every pass.
		if perr := c.deps.Store.MailProcessed(ctx, id); perr != nil {
			return "error", perr
		}
		return "unreadable", err
	}
	addr, name := c.customerAddress(p)
	customer, _, err := c.deps.Journey.Identify(ctx, journey.KindEmail, addr, name)
	if err != nil {
		if errors.Is(err, journey.ErrBadIdentity) {
			if perr := c.deps.Store.MailProcessed(ctx, id); perr != nil {
				return "error", perr
			}
			return "unreadable", err
		}
		return "error", err
	}
	conv := c.thread(p, customer.ID)
	reply := conv.ID != 0
	if !reply {
		conv = &store.Conversation{CustomerID: customer.ID, Channel: "email", Subject: p.Subject, Status: "open", Created: m.Received}
	}
	conv.Updated = m.Received
	recipient := ""
	if len(m.Recipients) > 0 {
		recipient = m.Recipients[0]
	}
	queue := c.cfg.DefaultQueue
	intent, recognised := c.deps.Journey.Recognize(journey.Incoming{Channel: "email", Subject: p.Subject, Body: p.Text, Recipient: recipient})
	if recognised {
		queue = intent.Queue
	}
	jc, err := c.deps.Journey.RoutingContextFor(customer.ID, m.Received)
	if err != nil {
		return "error", err
	}
	contact := &store.Contact{
		CustomerID: customer.ID, Channel: "email", Direction: "in", Queue: queue, Intent: intent.Name,
		Start: m.Received, Subject: p.Subject, Text: p.Text,
	}
	task := router.Task{
		Channel: router.Email, Queue: queue, CustomerID: customer.ID, ValueTier: customer.ValueTier,
		Repeat: jc.RepeatOf != nil, PreferredAgent: jc.LastAgent, Arrived: m.Received,
	}
	rec := store.InboundRecord{MailID: id, Contact: contact, Conversation: conv, MessageIDs: []string{p.MessageID}}
	if p.Automatic {
		contact.Outcome = "automatic" // in the journey, but no task: nobody is to answer a robot
	} else {
		rec.OpenTask = func(contactID uint64) ([]byte, error) {
			t := task
			t.ID = contactID
			return json.Marshal(router.Unfinished{Task: t})
		}
	}
	contactID, existed, err := c.deps.Store.RecordInboundMail(ctx, rec)
	if err != nil {
		return "error", err
	}
	if p.Automatic {
		return "automatic", nil
	}
	if !reply && !existed {
		c.autoAck(ctx, rec.Conversation, p, m.Received)
	}
	task.ID = contactID
	if err := c.deps.Router.Enqueue(task); err != nil && !errors.Is(err, router.ErrDuplicate) {
		// The open-task index has it: the next start queues it.
		return "error", fmt.Errorf("queueing the task of contact %d: %w", contactID, err)
	}
	switch {
	case existed:
		return "already", nil
	case reply:
		return "reply", nil
	default:
		return "new", nil
	}
}

// customerAddress is who wrote a message: its Reply-To when that names
// someone else than From — a web shop's contact form sends as itself on
// behalf of the customer, and answers go to Reply-To — else From. A
// Reply-To of one of the site's own addresses is ignored.
func (c *Channel) customerAddress(p *Parsed) (addr, name string) {
	if p.ReplyTo != "" && !strings.EqualFold(p.ReplyTo, p.From) && !c.smtp.accepts(p.ReplyTo) {
		return p.ReplyTo, p.ReplyToName
	}
	return p.From, p.FromName
}

// thread finds the conversation a message continues: by the Message-IDs
// it answers, newest first, or by the ticket tag in its subject. Only a
// conversation of the same customer counts: a reply from someone else
// starts a new one, so unrelated mail never lands in an old ticket.
func (c *Channel) thread(p *Parsed, customerID uint64) *store.Conversation {
	var candidates []*store.Conversation
	refs := append(slices.Clone(p.InReplyTo), reversed(p.References)...)
	for _, mid := range refs {
		if conv, err := c.deps.Store.ConversationByMessageID(mid); err == nil {
			candidates = append(candidates, conv)
		}
	}
	if m := ticketTag.FindStringSubmatch(p.Subject); m != nil {
		if id, err := strconv.ParseUint(m[1], 10, 64); err == nil {
			if conv, err := c.deps.Store.Conversation(id); err == nil {
				candidates = append(candidates, conv)
			}
		}
	}
	for _, conv := range candidates {
		if conv.CustomerID == customerID {
			return conv
		}
	}
	return &store.Conversation{}
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}
