package mail

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"dirigent/journey"
	"dirigent/store"
)

// SmarthostConfig is where replies go out: the site's mail server.
type SmarthostConfig struct {
	Addr     string // host:port; empty: replies wait in the outbox
	TLS      string // "starttls" (required), "tls" (implicit, port 465) or "none"
	User     string
	Password string
	From     string // the address replies come from
	Hostname string // for EHLO and Message-IDs
	// MaxBytes is the largest message the smarthost takes: Reply refuses
	// a larger one (store.ErrTooLarge). 0: no limit (the configuration
	// always sets one).
	MaxBytes int
	// RetryBase is the first retry delay; each failure doubles it, up to
	// an hour.
	RetryBase time.Duration
	// MaxQueueTime is how long a reply is tried: then it bounces, with
	// the last answer (0: five days, as Postfix's maximal_queue_lifetime).
	MaxQueueTime time.Duration
}

const maxRetry = time.Hour

// Reply queues an agent's answer in a conversation, with files if any:
// addressed to the customer's latest message in it (its Reply-To, else
// From), or to another address to when given (journey.ErrBadIdentity
// for one that is no address, store.ErrConflict for another customer's),
// which becomes one of the customer's once mail from it answers the reply
// (sender); with In-Reply-To, References and the ticket tag, so the
// customer's answer threads back.
// It is durable in the outbox when Reply returns; sending happens in the
// background, retried with backoff across restarts.
func (c *Channel) Reply(ctx context.Context, conversationID uint64, agent, to, text string, files ...store.File) (*store.OutboundMail, error) {
	conv, err := c.deps.Store.Conversation(conversationID)
	if err != nil {
		return nil, err
	}
	last, lastTo, lastIdentity, err := c.answering(conv)
	if err != nil {
		return nil, err
	}
	var identity string // an address an agent gave, as an identity
	if to == "" {
		to, identity = lastTo, lastIdentity
	} else if to, identity, err = c.givenAddress(to); err != nil {
		return nil, err
	}
	subject := last.Subject
	if !strings.HasPrefix(strings.ToLower(subject), "re:") {
		subject = "Re: " + subject
	}
	if tag := "[#" + conv.Tag + "]"; !strings.Contains(subject, tag) {
		subject += " " + tag
	}
	refs := append(last.References, last.MessageID)
	msgID, err := c.newMessageID()
	if err != nil {
		return nil, err
	}
	files = slices.Clone(files)
	for i := range files {
		files[i].Type = attachmentType(files[i].Type)
	}
	auto := "" // an agent's
	if agent == "" {
		// The acknowledgement says it is one (RFC 3834), so that the
		// customer's own responder does not answer it.
		auto = "auto-replied"
	}
	raw, err := c.compose(to, subject, msgID, last.MessageID, refs, auto, text, files)
	if err != nil {
		return nil, err
	}
	if limit := c.cfg.Smarthost.MaxBytes; limit > 0 && len(raw) > limit {
		return nil, fmt.Errorf("%w: the reply with its files would be %d bytes, the smarthost takes %d (mail.smarthost_max_bytes)", store.ErrTooLarge, len(raw), limit)
	}
	now := time.Now().UTC()
	m := &store.OutboundMail{ConversationID: conv.ID, From: c.cfg.Smarthost.From, To: to, MessageID: msgID, Raw: raw, Queued: now, NextAttempt: now, ToIdentity: identity}
	contact := &store.Contact{
		CustomerID: conv.CustomerID, Channel: "email", Direction: "out", ConversationID: conv.ID,
		Agent: agent, Start: now, End: now, Subject: subject, Text: text,
	}
	for _, f := range files {
		contact.Attachments = append(contact.Attachments, store.Attachment{Name: f.Name, Type: f.Type, Size: int64(len(f.Data))})
	}
	if err := c.deps.Store.QueueOutbound(ctx, m, contact); err != nil {
		return nil, err
	}
	c.stored(0) // wake the sender
	return m, nil
}

// answering parses the customer's latest stored message of conv, which a
// reply answers, and says where the reply goes: where that message says
// answers go (customerAddress), unless an agent's reply since went to
// another address they gave (identity), which is then where the customer
// is reached, and the reply goes there as given too, so that an answer
// to it proves the address. A message from an address that is no longer
// the customer's (customer unlink), and a given address that has become
// another customer's, are passed over for one from an address still
// theirs: answers must not go to a stranger in a thread the customer
// wrote in. A thread with no message from an address of theirs (a
// stranger's mail filed under them, the address taken from them since)
// is answered where its newest message came from: that is the mail the
// agent answers. Automatic mail is answered only in a conversation of nothing else; a
// bounce never (the mail system is not whom a reply is for).
func (c *Channel) answering(conv *store.Conversation) (last *Parsed, to, identity string, err error) {
	var (
		mails []uint64 // the customer's, newest first
		auto  uint64   // the newest automatic one
		since uint64   // the newest agent's reply after the newest of mails
	)
	err = c.deps.Store.ConversationContacts(conv.CustomerID, conv, false, func(ct *store.Contact) bool {
		switch {
		case ct.Direction == "in" && ct.MailID != 0 && ct.BounceOf == 0 && ct.Outcome == store.OutcomeAutomatic:
			auto = cmp.Or(auto, ct.MailID)
		case ct.Direction == "in" && ct.MailID != 0 && ct.BounceOf == 0:
			mails = append(mails, ct.MailID)
		case len(mails) == 0 && since == 0 && ct.OutboundID != 0 && ct.Agent != "":
			since = ct.OutboundID
		}
		// A long thread is not read to its beginning: one of the newest
		// messages is the customer's.
		return len(mails) < maxAnswering
	})
	if err != nil {
		return nil, "", "", err
	}
	if len(mails) == 0 && auto != 0 {
		mails = []uint64{auto}
	}
	if len(mails) == 0 {
		return nil, "", "", fmt.Errorf("conversation %d has no message from the customer to answer: %w", conv.ID, store.ErrNotFound)
	}
	for i, id := range mails {
		_, raw, err := c.deps.Store.Mail(id)
		if err != nil {
			return nil, "", "", err
		}
		p, err := Parse(raw)
		if err != nil {
			return nil, "", "", err
		}
		addr, _ := c.customerAddress(p)
		if i == 0 {
			last, to = p, addr // when none is from an address of theirs
		}
		if owner, _ := c.owner(addr); owner == conv.CustomerID {
			last, to = p, addr
			break
		}
	}
	if since != 0 {
		m, err := c.deps.Store.OutboundStatus(since)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, "", "", err
		}
		if err == nil && m.ToIdentity != "" {
			if owner, err := c.deps.Store.LookupIdentity(m.ToIdentity); errors.Is(err, store.ErrNotFound) || owner == conv.CustomerID {
				to, identity = m.To, m.ToIdentity
			}
		}
	}
	return last, to, identity, nil
}

// maxAnswering bounds the customer's messages answering looks at for one
// from an address still theirs.
const maxAnswering = 10

// owner is the customer whose identity an e-mail address is; 0 for none.
func (c *Channel) owner(addr string) (uint64, error) {
	identity, err := c.emailIdentity(addr)
	if err != nil {
		return 0, err
	}
	return c.deps.Store.LookupIdentity(identity)
}

// emailIdentity is an e-mail address as a customer's identity
// ("email:joe@example.org", normalised); journey.ErrBadIdentity for no
// address.
func (c *Channel) emailIdentity(addr string) (string, error) {
	id, err := c.deps.Journey.Normalizer().Normalize(journey.KindEmail, addr)
	return id.String(), err
}

// givenAddress checks an address an agent gave for a reply: it goes out as
// typed (a sub-address kept), and is the customer's identity as
// normalised. The site's own addresses, and those of programs, are no
// customer's (journey.ErrBadIdentity).
func (c *Channel) givenAddress(raw string) (to, identity string, err error) {
	a, err := gomail.ParseAddress(raw)
	if err != nil {
		return "", "", fmt.Errorf("%w: %q is no e-mail address", journey.ErrBadIdentity, raw)
	}
	if c.smtp.accepts(a.Address) || strings.EqualFold(a.Address, c.cfg.Smarthost.From) || isProgram(a.Address) || noReply(a.Address) {
		return "", "", fmt.Errorf("%w: %s is the site's own address or a program's, no customer's", journey.ErrBadIdentity, a.Address)
	}
	if identity, err = c.emailIdentity(a.Address); err != nil {
		return "", "", err
	}
	return a.Address, identity, nil
}

func (c *Channel) newMessageID() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "dg-" + hex.EncodeToString(b) + "@" + c.cfg.Smarthost.Hostname, nil
}

// compose writes a plain-text reply as RFC 5322, UTF-8, quoted-printable;
// with files, as multipart/mixed, each file in base64. autoSubmitted, when
// not empty, is its Auto-Submitted (RFC 3834): a program sent it.
func (c *Channel) compose(to, subject, msgID, inReplyTo string, refs []string, autoSubmitted, text string, files []store.File) ([]byte, error) {
	var h gomail.Header
	h.SetDate(time.Now())
	if autoSubmitted != "" {
		h.Set("Auto-Submitted", autoSubmitted)
	}
	h.SetAddressList("From", []*gomail.Address{{Address: c.cfg.Smarthost.From}})
	h.SetAddressList("To", []*gomail.Address{{Address: to}})
	h.SetSubject(subject)
	h.SetMessageID(msgID)
	if inReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{inReplyTo})
	}
	var clean []string
	for _, r := range refs {
		if r != "" {
			clean = append(clean, r)
		}
	}
	if len(clean) > 0 {
		h.SetMsgIDList("References", clean)
	}
	body := []byte(strings.ReplaceAll(text, "\n", "\r\n"))
	var buf bytes.Buffer
	if len(files) == 0 {
		plainText(&h.Header)
		w, err := gomail.CreateSingleInlineWriter(&buf, h)
		if err != nil {
			return nil, err
		}
		return closed(&buf, w, body)
	}
	mw, err := gomail.CreateWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	var th gomail.InlineHeader
	plainText(&th.Header)
	w, err := mw.CreateSingleInline(th)
	if err != nil {
		return nil, err
	}
	if _, err := closed(&buf, w, body); err != nil {
		return nil, err
	}
	for _, f := range files {
		var ah gomail.AttachmentHeader
		ah.SetContentType(f.Type, nil) // attachmentType's
		ah.SetFilename(f.Name)
		ah.Set("Content-Transfer-Encoding", "base64")
		w, err := mw.CreateAttachment(ah)
		if err != nil {
			return nil, err
		}
		if _, err := closed(&buf, w, f.Data); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// plainText makes h the header of the reply's text: UTF-8,
// quoted-printable.
func plainText(h *message.Header) {
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	h.Set("Content-Transfer-Encoding", "quoted-printable")
}

// MaxReplyBytes is the largest reply the smarthost takes, files
// included; 0: no limit.
func (c *Channel) MaxReplyBytes() int { return c.cfg.Smarthost.MaxBytes }

// attachmentType is the type a file is sent as: as given, unless the
// mail would take it for structure (multipart/*, which go-message writes
// without transfer encoding, and message/*, which must not be base64):
// those, and types that do not parse, go as application/octet-stream.
func attachmentType(t string) string {
	mt, _, err := mime.ParseMediaType(t)
	if err != nil || !strings.Contains(mt, "/") || strings.HasPrefix(mt, "multipart/") || strings.HasPrefix(mt, "message/") {
		return "application/octet-stream"
	}
	return mt
}

// closed writes data to w and closes it: buf's bytes then.
func closed(buf *bytes.Buffer, w io.WriteCloser, data []byte) ([]byte, error) {
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sendDue delivers every outbox message that is due, recording each
// attempt; a failure waits twice as long as the one before.
func (c *Channel) sendDue(ctx context.Context) {
	if c.cfg.Smarthost.Addr == "" {
		return
	}
	due, err := c.deps.Store.DueOutbound(time.Now())
	c.outboxRead(err) // those that could be read are sent all the same
	relay, _, _ := net.SplitHostPort(c.cfg.Smarthost.Addr)
	for _, m := range due {
		if ctx.Err() != nil {
			return
		}
		// Its bytes now, one reply in memory at a time; gone: its
		// customer was erased since.
		m, err := c.deps.Store.OutboundMessage(m.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			c.deps.Logger.Error("reading a reply to send", "err", err)
			continue
		}
		// One without bytes is an attempt that fails, so that it is not
		// read every few seconds, and bounces in the end.
		sendErr := fmt.Errorf("outbox message %d has no bytes to send", m.ID)
		if len(m.Raw) > 0 {
			sendErr = c.deliver(m)
		}
		now := time.Now().UTC()
		if r := (*refusal)(nil); errors.As(sendErr, &r) && r.final && c.bounceUnsent(m, r.report(m, relay), relay, r.Error(), now) {
			continue
		}
		if lifetime := c.cfg.Smarthost.MaxQueueTime; sendErr != nil && now.Sub(m.Queued) >= lifetime &&
			c.bounceUnsent(m, expired(m, sendErr, lifetime, relay), relay, fmt.Sprintf("not sent in %s: %v", span(lifetime), sendErr), now) {
			continue
		}
		next := now.Add(min(c.cfg.Smarthost.RetryBase<<min(m.Attempts, 20), maxRetry))
		if sendErr != nil {
			c.metrics.sendFailures.Inc()
			c.deps.Logger.Warn("reply not sent; will retry", "outbound", m.ID, "to", m.To, "attempt", m.Attempts+1, "next", next, "err", sendErr)
		} else {
			c.metrics.sent.Inc()
		}
		if err := c.deps.Store.OutboundAttempt(context.Background(), m.ID, now, sendErr, next); err != nil {
			c.deps.Logger.Error("recording a delivery attempt", "outbound", m.ID, "err", err)
			continue
		}
		c.notifyDelivery(m.ConversationID)
	}
}

// outboxRead logs an error reading the outbox once while it lasts (a
// broken record would otherwise be an ERROR every few seconds), and when
// it is over.
func (c *Channel) outboxRead(err error) {
	switch {
	case err != nil && err.Error() != c.outboxErr:
		c.deps.Logger.Error("reading the outbox", "err", err)
		c.outboxErr = err.Error()
	case err == nil && c.outboxErr != "":
		c.deps.Logger.Info("the outbox is readable again")
		c.outboxErr = ""
	}
}

// deliver sends one message through the smarthost.
func (c *Channel) deliver(m *store.OutboundMail) error {
	sh := c.cfg.Smarthost
	host, _, err := net.SplitHostPort(sh.Addr)
	if err != nil {
		return err
	}
	tlsConfig := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	var cl *smtp.Client
	switch sh.TLS {
	case "tls":
		cl, err = smtp.DialTLS(sh.Addr, tlsConfig)
	case "none":
		cl, err = smtp.Dial(sh.Addr)
	default:
		cl, err = smtp.DialStartTLS(sh.Addr, tlsConfig)
	}
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Hello(sh.Hostname); err != nil {
		return err
	}
	if sh.User != "" {
		if err := cl.Auth(sasl.NewPlainClient("", sh.User, sh.Password)); err != nil {
			return fmt.Errorf("smarthost login: %w", err)
		}
	}
	if err := cl.Mail(m.From, nil); err != nil {
		return answered(err, m.From, atSender)
	}
	if err := cl.Rcpt(m.To, nil); err != nil {
		return answered(err, m.From, atRecipient)
	}
	w, err := cl.Data()
	if err != nil {
		return answered(err, m.From, atContent)
	}
	if _, err := w.Write(m.Raw); err != nil {
		return answered(err, m.From, atContent)
	}
	if err := w.Close(); err != nil {
		return answered(err, m.From, atContent)
	}
	// Taken: a failing goodbye changes nothing (sending again would send
	// it twice).
	if err := cl.Quit(); err != nil {
		c.deps.Logger.Debug("smarthost goodbye failed after the reply was taken", "outbound", m.ID, "err", err)
	}
	return nil
}

// bounceUnsent records a reply that will not be sent (the smarthost
// refused it for good, or it was tried for MaxQueueTime), for reason: it
// is not tried again, and the delivery report written for it comes back
// into the conversation as a bounce from further on would. It reports
// whether that was recorded; if not, the reply is an attempt that failed,
// tried again with backoff.
func (c *Channel) bounceUnsent(m *store.OutboundMail, u dsn, relay, reason string, at time.Time) bool {
	raw, err := c.dsnReport(m, u, relay, at)
	if err == nil {
		report := &store.InboundMail{Received: at, Source: "smarthost", Recipients: []string{m.From}}
		err = c.deps.Store.RefuseOutbound(context.Background(), m.ID, at, reason, report, raw)
	}
	if errors.Is(err, store.ErrConflict) {
		return true // an agent stopped it during the attempt: nothing to report
	}
	if err != nil {
		c.deps.Logger.Error("recording a reply that will not be sent", "outbound", m.ID, "err", err)
		return false
	}
	c.metrics.sendFailures.Inc()
	c.deps.Logger.Warn("reply not sent, and not tried again", "outbound", m.ID, "to", m.To, "reason", reason)
	c.notifyDelivery(m.ConversationID)
	c.stored(0) // process the report
	return true
}

// notifyDelivery tells Deps.OnDelivery that a reply's delivery changed.
func (c *Channel) notifyDelivery(conversationID uint64) {
	if c.deps.OnDelivery != nil {
		c.deps.OnDelivery(conversationID)
	}
}
