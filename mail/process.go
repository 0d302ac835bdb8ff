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

// batchSize bounds the messages recorded in one transaction: one commit
// (two fsyncs) carries many messages, so processing keeps up with intake
// on little CPU, and the first of a batch waits for no more than the
// processing of the others.
const batchSize = 100

// processPending processes every stored message not yet processed, in
// arrival order, a batch per transaction.
func (c *Channel) processPending(ctx context.Context) {
	ids, err := c.deps.Store.PendingMails()
	if err != nil {
		c.deps.Logger.Error("listing stored mail", "err", err)
		return
	}
	var b batch
	for _, id := range ids {
		if ctx.Err() != nil {
			return // what the batch holds is still pending: the next start does it
		}
		if o, done := c.prepare(ctx, id, &b); done {
			c.count(o)
		}
		if len(b.mails) == batchSize {
			c.countAll(c.record(ctx, &b))
		}
	}
	c.countAll(c.record(ctx, &b))
}

// outcome is what became of one message: for the metrics, and the error
// to log.
type outcome struct {
	mail uint64
	name string
	err  error
}

func (c *Channel) count(o outcome) {
	if errors.Is(o.err, context.Canceled) {
		// The daemon is stopping: the message is still pending, and the
		// next start processes it.
		c.deps.Logger.Debug("processing mail interrupted by stop", "mail", o.mail, "err", o.err)
		return
	}
	c.metrics.processed.WithLabelValues(o.name).Inc()
	if o.err != nil {
		c.deps.Logger.Error("processing mail", "mail", o.mail, "outcome", o.name, "err", o.err)
	}
}

func (c *Channel) countAll(outcomes []outcome) {
	for _, o := range outcomes {
		c.count(o)
	}
}

// batch is messages made sense of, waiting to be recorded together.
type batch struct {
	mails []prepared
}

type prepared struct {
	rec    store.InboundRecord // rec.Identity: the sender's address proven the customer's
	task   router.Task
	reply  bool   // continues a conversation
	sender string // whom answers go to (customerAddress)
}

// bounce: the message says that one of the site's replies did not arrive.
func (m prepared) bounce() bool { return m.rec.BouncedOutboundID != 0 }

// conversationOf is the conversation of a message of the batch with
// Message-ID mid; nil when none has it.
func (b *batch) conversationOf(mid string) *store.Conversation {
	if mid == "" {
		return nil // as the store's thread index ignores it
	}
	for _, m := range b.mails {
		if slices.Contains(m.rec.MessageIDs, mid) {
			return m.rec.Conversation
		}
	}
	return nil
}

// proven is the customer whose a message of the batch proved identity,
// an address an agent sent a reply to (sender); 0 for none.
func (b *batch) proven(identity string) uint64 {
	for _, m := range b.mails {
		if m.rec.Identity == identity {
			return m.rec.Contact.CustomerID
		}
	}
	return 0
}

// contactsOf are the batch's contacts of a customer, oldest first.
func (b *batch) contactsOf(customerID uint64) []*store.Contact {
	var out []*store.Contact
	for _, m := range b.mails {
		if m.rec.Contact.CustomerID == customerID {
			out = append(out, m.rec.Contact)
		}
	}
	return out
}

// prepare makes sense of one stored message: its customer, conversation,
// intent and task, seeing the messages before it in b as if they were
// recorded, and adds it to b. A message that can make no contact is done
// with here (done is set).
func (c *Channel) prepare(ctx context.Context, id uint64, b *batch) (o outcome, done bool) {
	o.mail = id
	fail := func(name string, err error) (outcome, bool) {
		o.name, o.err = name, err
		return o, true
	}
	m, raw, err := c.deps.Store.Mail(id)
	if err != nil {
		return fail("error", err)
	}
	p, err := Parse(raw)
	if err != nil {
		// Kept in the store for a better parser; processed so it does not
		// come back on every pass.
		if perr := c.deps.Store.MailProcessed(ctx, id); perr != nil {
			return fail("error", perr)
		}
		return fail("unreadable", err)
	}
	bounced, err := c.findBouncedReply(p.Bounce, b)
	if err != nil {
		return fail("error", err)
	}
	addr, name := c.customerAddress(p)
	// A noreply address to answer is a program's: a web shop's contact
	// form sending as noreply@ on behalf of its customer is not.
	robot := p.Automatic || noReply(addr)
	var conv *store.Conversation
	var proven string // the sender's address, proven the customer's
	reply := bounced != nil
	if reply {
		// The report is the conversation's, whoever sent it: the
		// mail system is not a customer.
		conv = bounced.conv
	} else {
		var customerID uint64
		customerID, proven, err = c.sender(ctx, p, addr, name, robot, b)
		if err != nil {
			if errors.Is(err, journey.ErrBadIdentity) {
				if perr := c.deps.Store.MailProcessed(ctx, id); perr != nil {
					return fail("error", perr)
				}
				return fail("unreadable", err)
			}
			return fail("error", err)
		}
		conv = c.thread(p, customerID, b)
		reply = conv != nil
		if !reply {
			conv = &store.Conversation{CustomerID: customerID, Channel: "email", Subject: p.Subject, Status: "open", Created: m.Received}
		}
	}
	conv.Updated = m.Received
	customerID := conv.CustomerID
	queue, intent := c.cfg.DefaultQueue, ""
	if bounced != nil {
		if bounced.queue != "" {
			queue, intent = bounced.queue, bounced.intent
		}
	} else {
		recipient := ""
		if len(m.Recipients) > 0 {
			recipient = m.Recipients[0]
		}
		if in, recognised := c.deps.Journey.Recognize(journey.Incoming{Channel: "email", Subject: p.Subject, Body: p.Text, Recipient: recipient}); recognised {
			queue, intent = in.Queue, in.Name
		}
	}
	jc, err := c.deps.Journey.RoutingContextFor(customerID, m.Received, b.contactsOf(customerID))
	if err != nil {
		return fail("error", err)
	}
	contact := &store.Contact{
		CustomerID: customerID, Channel: "email", Direction: "in", Queue: queue, Intent: intent,
		Start: m.Received, Subject: p.Subject, Text: p.Text, Attachments: p.Attachments,
	}
	task := router.Task{
		Channel: router.Email, Queue: queue, CustomerID: customerID, ValueTier: jc.Customer.ValueTier,
		Repeat: jc.RepeatOf != nil, PreferredAgent: jc.LastAgent, Arrived: m.Received,
	}
	rec := store.InboundRecord{MailID: id, Contact: contact, Conversation: conv, MessageIDs: []string{p.MessageID}, Identity: proven}
	if bounced != nil {
		contact.BounceOf = bounced.reply.ID
		rec.BouncedOutboundID, rec.BounceReason = bounced.reply.OutboundID, bounced.failure.Reason()
	}
	if robot && (bounced == nil || bounced.reply.Agent == "" || bounced.again) {
		// In the journey, but no task: nobody is to answer a robot. A
		// bounce of an agent's reply is for an agent, once; of an
		// acknowledgement, it only shows.
		contact.Outcome = store.OutcomeAutomatic
	} else {
		rec.OpenTask = func(contactID uint64) ([]byte, error) {
			t := task
			t.ID = contactID
			return json.Marshal(router.Unfinished{Task: t})
		}
	}
	b.mails = append(b.mails, prepared{rec: rec, task: task, reply: reply, sender: addr})
	return o, false
}

// bouncedReply is a reply that a delivery report says did not reach the
// customer.
type bouncedReply struct {
	conv    *store.Conversation
	reply   *store.Contact
	failure *Recipient // the report's, for the reply's recipient
	// again: a report said so before (or one earlier in the batch):
	// there was a task for it already.
	again bool
	// queue and intent are those of the customer's mail before the reply,
	// for the task the report becomes.
	queue, intent string
}

// findBouncedReply finds the reply a bounce is about among the replies sent
// into its conversation: by its Message-ID, and only when the report
// says the reply's recipient failed. nil for no bounce, or one about any
// other message (a forged sender's mail in the site's name).
func (c *Channel) findBouncedReply(bounce *Bounce, b *batch) (*bouncedReply, error) {
	if bounce == nil {
		return nil, nil
	}
	conv, err := c.deps.Store.ConversationByMessageID(bounce.MessageID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	contacts, replies, err := c.deps.Store.Thread(conv.CustomerID, conv, false, 0)
	if err != nil {
		return nil, err
	}
	before := map[uint64]bool{} // replies bounced before, by contact
	for i, ct := range contacts {
		if ct.BounceOf != 0 {
			before[ct.BounceOf] = true
		}
		m := replies[ct.OutboundID]
		if m == nil || m.MessageID != bounce.MessageID {
			continue
		}
		f := bounce.For(m.To)
		if f == nil {
			return nil, nil // about other recipients
		}
		r := &bouncedReply{conv: conv, reply: ct, failure: f, again: before[ct.ID] || b.bounces(m.ID)}
		for _, in := range contacts[i+1:] {
			if in.Direction == "in" && in.BounceOf == 0 {
				r.queue, r.intent = in.Queue, in.Intent
				break
			}
		}
		return r, nil
	}
	return nil, nil
}

// sender is the customer a message is from: whose identity its address
// (addr, customerAddress) is. An address nobody has yet is a new
// customer's, unless a person (not a program: robot) answers from it a
// reply an agent sent to that address (one the customer gave by phone):
// only that address received the reply's Message-ID, so the answer
// proves the address the reply's customer's, and it becomes theirs
// (proven) when the message is recorded. A typing error thus files no
// stranger's mail under the customer unless the stranger answers the
// reply. A program's answer to such a reply is the reply's customer's,
// and links nothing. Whoever has the address first keeps it: a mail from
// it that made it a new customer's, also earlier in the same batch, wins
// over a later answer's proof.
func (c *Channel) sender(ctx context.Context, p *Parsed, addr, name string, robot bool, b *batch) (customerID uint64, proven string, err error) {
	identity, err := c.emailIdentity(addr)
	if err != nil {
		return 0, "", err
	}
	if customerID := b.proven(identity); customerID != 0 {
		return customerID, identity, nil
	}
	customerID, err = c.deps.Store.LookupIdentity(identity)
	if !errors.Is(err, store.ErrNotFound) {
		return customerID, "", err
	}
	conv, err := c.givenAddressAnswered(p, identity)
	switch {
	case err != nil:
		return 0, "", err
	case conv != nil && robot:
		// A responder's answer is the conversation's (it says the reply
		// arrived, or that nobody reads it), but proves no one: it
		// neither links the address nor makes it a new customer's.
		return conv.CustomerID, "", nil
	case conv != nil:
		return conv.CustomerID, identity, nil
	}
	customer, _, err := c.deps.Journey.Identify(ctx, journey.KindEmail, addr, name)
	if err != nil {
		return 0, "", err
	}
	return customer.ID, "", nil
}

// maxParents bounds the Message-IDs of a message's In-Reply-To and
// References looked at for what it answers: a crafted References of
// thousands costs no more than this many lookups.
const maxParents = 20

// parents are the Message-IDs a message answers, newest first: its
// In-Reply-To, then its References from the end; at most maxParents.
func parents(p *Parsed) []string {
	ids := append(slices.Clone(p.InReplyTo), reversed(p.References)...)
	return ids[:min(len(ids), maxParents)]
}

// givenAddressAnswered is the conversation of a reply an agent sent to
// identity, an address they gave, that p answers: whose Message-ID its
// In-Reply-To or References names (newest first); nil for none.
func (c *Channel) givenAddressAnswered(p *Parsed, identity string) (*store.Conversation, error) {
	answered := parents(p)
	walked := map[uint64]bool{}
	for _, mid := range answered {
		conv, err := c.deps.Store.ConversationByMessageID(mid)
		if errors.Is(err, store.ErrNotFound) || err == nil && walked[conv.ID] {
			continue
		}
		if err != nil {
			return nil, err
		}
		walked[conv.ID] = true
		_, replies, err := c.deps.Store.Thread(conv.CustomerID, conv, false, 0)
		if err != nil {
			return nil, err
		}
		for _, m := range replies {
			if m.ToIdentity == identity && slices.Contains(answered, m.MessageID) {
				return conv, nil
			}
		}
	}
	return nil, nil
}

// bounces reports whether a message of the batch is a bounce of outbox
// message id.
func (b *batch) bounces(id uint64) bool {
	return slices.ContainsFunc(b.mails, func(m prepared) bool { return m.rec.BouncedOutboundID == id })
}

// record stores the batch in one transaction, then acknowledges new
// conversations and queues the tasks, and empties the batch.
func (c *Channel) record(ctx context.Context, b *batch) []outcome {
	if len(b.mails) == 0 {
		return nil
	}
	recs := make([]store.InboundRecord, len(b.mails))
	for i, m := range b.mails {
		recs[i] = m.rec
	}
	results, err := c.deps.Store.RecordInboundMails(ctx, recs)
	out := make([]outcome, len(b.mails))
	for i, m := range b.mails {
		if err != nil {
			out[i] = outcome{m.rec.MailID, "error", err}
		} else {
			out[i] = c.recorded(ctx, m, results[i])
		}
	}
	b.mails = b.mails[:0]
	return out
}

// recorded finishes a message once its record is stored.
func (c *Channel) recorded(ctx context.Context, m prepared, r store.RecordedMail) outcome {
	o := outcome{mail: m.rec.MailID}
	switch {
	case errors.Is(r.Err, store.ErrNotFound), errors.Is(r.Err, store.ErrConflict):
		// Its customer or conversation was erased, or merged into
		// another, or its proven address became another customer's, while
		// it was being processed: it is still pending, and is processed
		// again for whoever its sender is now.
		o.name = "gone"
		return o
	case r.Err != nil:
		o.name, o.err = "error", r.Err
		return o
	}
	if m.bounce() {
		c.notifyDelivery(m.rec.Conversation.ID)
	}
	if m.rec.OpenTask == nil {
		o.name = "automatic"
		if m.bounce() {
			o.name = "bounce"
		}
		return o
	}
	if !m.reply && !r.Existed {
		c.autoAck(ctx, m.rec.Conversation, m.sender, m.rec.Contact.Start)
	}
	task := m.task
	task.ID = r.ContactID
	if err := c.deps.Router.Enqueue(task); errors.Is(err, router.ErrErased) {
		o.name = "gone" // the contact went with its erased customer
		return o
	} else if err != nil && !errors.Is(err, router.ErrDuplicate) {
		// The open-task index has it: the next start queues it.
		o.name, o.err = "error", fmt.Errorf("queueing the task of contact %d: %w", r.ContactID, err)
		return o
	}
	switch {
	case r.Existed:
		o.name = "already"
	case m.bounce():
		o.name = "bounce"
	case m.reply:
		o.name = "reply"
	default:
		o.name = "new"
	}
	return o
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
// it answers, newest first (among the messages of b too), or by the
// ticket tag in its subject; nil when none. Only a conversation of the
// same customer counts: a reply from someone else starts a new one, so
// unrelated mail never lands in an old ticket.
func (c *Channel) thread(p *Parsed, customerID uint64, b *batch) *store.Conversation {
	for _, mid := range parents(p) {
		conv := b.conversationOf(mid)
		if conv == nil {
			if stored, err := c.deps.Store.ConversationByMessageID(mid); err == nil {
				conv = stored
			}
		}
		if conv != nil && conv.CustomerID == customerID {
			return conv
		}
	}
	if m := ticketTag.FindStringSubmatch(p.Subject); m != nil {
		if id, err := strconv.ParseUint(m[1], 10, 64); err == nil {
			if conv, err := c.deps.Store.Conversation(id); err == nil && conv.CustomerID == customerID {
				return conv
			}
		}
	}
	return nil
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}
