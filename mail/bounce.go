package mail

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"

	"dirigent/store"
)

// Bounce is what a delivery status notification (RFC 3464, RFC 6533:
// the mail system's "Undelivered Mail Returned to Sender") says about a
// message that did not reach its recipients.
type Bounce struct {
	MessageID string // of the message that was not delivered
	// Recipients are those the report names (at most maxRecipients), one
	// at least failed.
	Recipients []Recipient
}

// Recipient is what a report says of one recipient.
type Recipient struct {
	Recipient  string // Final-Recipient
	Original   string // Original-Recipient, when the report has it: the address as sent, before forwarding
	Action     string // failed, delayed, delivered, relayed, expanded
	Status     string // 5.1.1
	Diagnostic string // the receiving server's answer: 550 5.1.1 … User unknown
}

// For is the failure of a message sent to addr: the recipient the report
// names so, if it failed; else, the report naming only one recipient
// and not as sent, that one (an alias the report names by where it led),
// if it failed. nil when the report does not say that addr failed.
func (b *Bounce) For(addr string) *Recipient {
	for i, r := range b.Recipients {
		if strings.EqualFold(r.Recipient, addr) || strings.EqualFold(r.Original, addr) {
			if r.Action != "failed" {
				return nil
			}
			return &b.Recipients[i]
		}
	}
	if len(b.Recipients) == 1 && b.Recipients[0].Action == "failed" && b.Recipients[0].Original == "" {
		return &b.Recipients[0]
	}
	return nil
}

// Reason is the failure in one line, for the reply's delivery note.
func (r *Recipient) Reason() string {
	why := r.Diagnostic
	if why == "" {
		why = "status " + r.Status
	}
	if r.Recipient != "" {
		why = r.Recipient + ": " + why
	}
	if len(why) > maxReasonBytes {
		why = strings.ToValidUTF8(why[:maxReasonBytes], "") + "…"
	}
	return why
}

const (
	// maxReasonBytes bounds a bounce's reason as a reply keeps it.
	maxReasonBytes = 1000
	// maxStatusBytes bounds what is read of a report's
	// message/delivery-status part; maxRecipients the recipients kept of
	// its field blocks (one for the message, then one per recipient).
	maxStatusBytes = 64 << 10
	maxRecipients  = 10
)

// deliveryReport gathers what a multipart/report of a delivery-status
// report type says, from its parts as Parse's walk meets them.
type deliveryReport struct {
	statusRead bool
	recipients []Recipient
	original   string // the Message-ID of the message reported on
}

// isDeliveryReport reports a message whose content type makes it a
// delivery status notification (RFC 6533 names the international one
// global-delivery-status).
func isDeliveryReport(h message.Header) bool {
	ct, params, _ := h.ContentType()
	rt := strings.ToLower(params["report-type"])
	return ct == "multipart/report" && (rt == "delivery-status" || rt == "global-delivery-status")
}

// read takes what it needs from a part of the report, and gives back the
// part's bytes whole for the walk to go on with.
func (r *deliveryReport) read(ct string, body io.Reader) io.Reader {
	status := ct == "message/delivery-status" || ct == "message/global-delivery-status"
	returned := ct == "message/rfc822" || ct == "message/global" || ct == "text/rfc822-headers" || ct == "message/global-headers"
	if status && r.statusRead || returned && r.original != "" || !status && !returned {
		return body
	}
	limit := int64(maxHeaderBytes)
	if status {
		limit = maxStatusBytes
	}
	b, _ := io.ReadAll(io.LimitReader(body, limit))
	br := fields(bytes.NewReader(b))
	if status {
		r.statusRead, r.recipients = true, recipients(br)
	} else {
		r.original = messageID(br)
	}
	return io.MultiReader(bytes.NewReader(b), body)
}

// fields reads header fields that may end without the blank line that
// ends a header, as a part of header fields alone may.
func fields(r io.Reader) *bufio.Reader {
	return bufio.NewReader(io.MultiReader(r, strings.NewReader("\r\n\r\n")))
}

// messageID is the Message-ID of a returned message's header; "" for
// none.
func messageID(br *bufio.Reader) string {
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return ""
	}
	id, _ := (&gomail.Header{Header: message.Header{Header: h}}).MessageID()
	return id
}

// recipients reads a message/delivery-status part: blocks of fields, the
// message's first, then one per recipient.
func recipients(br *bufio.Reader) []Recipient {
	var out []Recipient
	for blocks := 0; blocks <= maxRecipients; {
		if _, err := br.Peek(1); err != nil {
			break
		}
		h, err := textproto.ReadHeader(br)
		if err != nil {
			break
		}
		if h.Len() == 0 {
			continue // a blank line more between blocks
		}
		blocks++
		// "failed", "failed (bad address)", "failed(x)"
		action := strings.ToLower(strings.TrimSpace(h.Get("Action")))
		if i := strings.IndexAny(action, " (;"); i >= 0 {
			action = action[:i]
		}
		status := strings.TrimSpace(h.Get("Status"))
		if action == "" && strings.HasPrefix(status, "5.") {
			action = "failed" // a report that leaves Action out
		}
		if action == "" {
			continue // the message's block
		}
		out = append(out, Recipient{
			Action:     action,
			Recipient:  typedValue(h.Get("Final-Recipient")),
			Original:   typedValue(h.Get("Original-Recipient")),
			Status:     status,
			Diagnostic: collapseSpace(typedValue(h.Get("Diagnostic-Code"))),
		})
	}
	return out
}

// typedValue is a report field's value without its type: "rfc822;
// joe@example.org" (or "rfc822; <joe@example.org>") is joe@example.org,
// "smtp; 550 …" is 550 ….
func typedValue(v string) string {
	if _, after, ok := strings.Cut(v, ";"); ok {
		v = after
	}
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">") && !strings.Contains(v[1:], "<") {
		v = v[1 : len(v)-1]
	}
	return v
}

// qmailReport reads a bounce in qmail's plain-text form (QSBMF,
// https://cr.yp.to/proto/qsbmf.txt), which old qmail and some appliances
// send instead of a delivery status notification: a first paragraph
// beginning "Hi. This is the", a paragraph per failed recipient beginning
// "<address>:" and saying why, and, after a line beginning "--- ", the
// returned message or its header. nil for any other text.
func qmailReport(text string) *deliveryReport {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if !strings.HasPrefix(text, "Hi. This is the") {
		return nil
	}
	paragraphs, returned, ok := strings.Cut(text, "\n--- ")
	if !ok {
		return nil
	}
	r := &deliveryReport{}
	for _, p := range strings.Split(paragraphs, "\n\n")[1:] {
		first, why, _ := strings.Cut(strings.TrimLeft(p, "\n"), "\n")
		if !strings.HasPrefix(first, "<") || !strings.HasSuffix(first, ">:") || len(r.recipients) == maxRecipients {
			continue
		}
		why = collapseSpace(strings.TrimSpace(why))
		status := "5.0.0"
		if m := enhancedStatus.FindStringSubmatch(why); m != nil {
			status = m[1]
		}
		r.recipients = append(r.recipients, Recipient{Recipient: first[1 : len(first)-2], Action: "failed", Status: status, Diagnostic: why})
	}
	// The break line, then the returned message's header.
	if _, msg, ok := strings.Cut(returned, "\n"); ok {
		msg = strings.TrimLeft(msg, "\n")
		r.original = messageID(fields(strings.NewReader(msg[:min(len(msg), maxHeaderBytes)])))
	}
	return r
}

// enhancedStatus finds the RFC 3463 status of a qmail paragraph: after a
// server's reply code ("Remote host said: 550 5.1.1 …") or in qmail's own
// "(#5.1.1)"; not in an address such as 10.4.5.6.
var enhancedStatus = regexp.MustCompile(`(?:\(#|\b[245][0-9]{2} )([245]\.[0-9]{1,3}\.[0-9]{1,3})\b`)

// bounce is the report's bounce, once the walk is through: about the
// message the report returns, or else the one it answers (p's
// In-Reply-To, References); nil when it reports no failure, or on no
// message that can be told.
func (r *deliveryReport) bounce(p *Parsed) *Bounce {
	if !slices.ContainsFunc(r.recipients, func(r Recipient) bool { return r.Action == "failed" }) {
		return nil
	}
	b := &Bounce{MessageID: r.original, Recipients: r.recipients}
	if b.MessageID == "" && len(p.InReplyTo) > 0 {
		b.MessageID = p.InReplyTo[0]
	}
	if b.MessageID == "" && len(p.References) > 0 {
		b.MessageID = p.References[len(p.References)-1]
	}
	if b.MessageID == "" {
		return nil
	}
	return b
}

// refusal is the smarthost's answer that refused a reply.
type refusal struct {
	err *smtp.SMTPError
	// final: the smarthost refused the reply's recipient or content for
	// good; sending it again cannot help.
	final bool
}

func (r *refusal) Error() string {
	code := ""
	if s := r.status(); s != "" {
		code = " " + s
	}
	return fmt.Sprintf("smarthost answered %d%s: %s", r.err.Code, code, r.err.Message)
}

// hasEnhancedCode: the answer had an RFC 3463 status (go-smtp leaves
// the code's zero value, or NoEnhancedCode, when it had none).
func hasEnhancedCode(se *smtp.SMTPError) bool {
	c := se.EnhancedCode[0]
	return c == 2 || c == 4 || c == 5
}

// stage is the step of the SMTP transaction a smarthost answered.
type stage int

const (
	atSender    stage = iota // MAIL FROM, or the login before it
	atRecipient              // RCPT TO
	atContent                // DATA, and the data's end
)

// answered makes a smarthost's error answer, at stage, a refusal; from
// is the reply's sender.
//
// Only some refuse the reply for good, as an MTA bounces it: a permanent
// status (RFC 3463) about the recipient's address (5.1.1, 5.1.2, 5.1.3,
// 5.1.6, 5.1.10) or mailbox (5.2.x, at RCPT), the message's size (5.3.4)
// or its content (5.6.x). Everything else is retried: a temporary
// refusal; one to the sender; one without a status, which cannot be told
// apart from one about dirigent's own set-up; a security or policy status
// (5.7.x: "relay access denied", "authentication required"); one about
// the sender, which Postfix gives at RCPT ("Sender address rejected"),
// and a submission server may give as 5.2.x at the data's end (its
// quota). Those an admin mends, and then every reply goes; meanwhile an
// agent can stop one, and after SmarthostConfig.MaxQueueTime it bounces.
func answered(err error, from string, at stage) error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return err
	}
	return &refusal{err: se, final: se.Code/100 == 5 && refusesReply(se, at) && !namesSender(se, from)}
}

// refusesReply reports a permanent status, at stage, about a message's
// recipient or content.
func refusesReply(se *smtp.SMTPError, at stage) bool {
	e := se.EnhancedCode
	if !hasEnhancedCode(se) || e[0] != 5 || at == atSender {
		return false
	}
	switch e[1] {
	case 1:
		return slices.Contains([]int{1, 2, 3, 6, 10}, e[2])
	case 2:
		return at == atRecipient
	case 3:
		return e[2] == 4
	case 6:
		return true
	}
	return false
}

// namesSender reports an answer about the sender rather than the
// recipient: Postfix's "Sender address rejected", or one naming <from>.
func namesSender(se *smtp.SMTPError, from string) bool {
	m := strings.ToLower(se.Message)
	return strings.Contains(m, "sender address") || strings.Contains(m, "<"+strings.ToLower(from)+">")
}

// dsn is what the delivery status notification for a reply that will
// not be sent says.
type dsn struct {
	why    string // its first sentence
	status string // RFC 3463
	// answer is the smarthost's last answer; "" when none answered, and
	// then failure says what failed.
	answer, failure string
}

// report: the smarthost refused the reply for good.
func (r *refusal) report(m *store.OutboundMail, relay string) dsn {
	return dsn{
		why:    fmt.Sprintf("The mail server %s refused the reply to %s for good, and it was not sent:", relay, m.To),
		status: cmp.Or(r.status(), "5.0.0"),
		answer: r.answer(),
	}
}

// status is the answer's RFC 3463 status; "" for none.
func (r *refusal) status() string {
	if !hasEnhancedCode(r.err) {
		return ""
	}
	e := r.err.EnhancedCode
	return fmt.Sprintf("%d.%d.%d", e[0], e[1], e[2])
}

// answer is the smarthost's answer as it gave it.
func (r *refusal) answer() string {
	if s := r.status(); s != "" {
		return fmt.Sprintf("%d %s %s", r.err.Code, s, r.err.Message)
	}
	return fmt.Sprintf("%d %s", r.err.Code, r.err.Message)
}

// expired: the reply could not be sent in its queue time; last is the
// last attempt's failure: the smarthost's answer (to the reply, or to the
// login), no connection to it (the site's mail server, not the
// customer's address, failed), or something else on the way.
func expired(m *store.OutboundMail, last error, lifetime time.Duration, relay string) dsn {
	unsent := fmt.Sprintf("The reply to %s could not be sent in %s, and is not tried again", m.To, span(lifetime))
	var se *smtp.SMTPError
	if errors.As(last, &se) {
		r := &refusal{err: se}
		return dsn{
			why:    fmt.Sprintf("%s. The mail server %s answered last:", unsent, relay),
			status: cmp.Or(r.status(), "4.4.7"), // delivery time expired
			answer: r.answer(),
		}
	}
	if op := (*net.OpError)(nil); errors.As(last, &op) && op.Op == "dial" {
		return dsn{
			why:     fmt.Sprintf("%s: the site's mail server %s could not be reached:", unsent, relay),
			status:  "4.4.1", // no answer from host
			failure: last.Error(),
		}
	}
	return dsn{
		why:     fmt.Sprintf("%s. The last attempt failed:", unsent),
		status:  "4.4.7",
		failure: last.Error(),
	}
}

// dsnReport writes the delivery status notification for a reply that
// will not be sent, as an MTA writes one to the sender: it is stored as
// the mail that came back, so that it reaches the conversation, and an
// agent, as a bounce from further on does.
func (c *Channel) dsnReport(m *store.OutboundMail, u dsn, relay string, at time.Time) ([]byte, error) {
	sh := c.cfg.Smarthost
	diagnostic := strings.ReplaceAll(cmp.Or(u.answer, u.failure), "\n", " ")
	remote := "Remote-MTA: dns; " + relay + "\r\nDiagnostic-Code: smtp; " + diagnostic + "\r\n"
	if u.answer == "" {
		remote = "Diagnostic-Code: X-dirigent; " + diagnostic + "\r\n"
	}
	var h gomail.Header
	h.SetDate(at)
	h.SetAddressList("From", []*gomail.Address{{Name: "Mail Delivery System", Address: "MAILER-DAEMON@" + sh.Hostname}})
	h.SetAddressList("To", []*gomail.Address{{Address: m.From}})
	h.SetSubject("Undelivered Mail Returned to Sender")
	h.SetMessageID(fmt.Sprintf("unsent-%d@%s", m.ID, sh.Hostname))
	h.Set("Auto-Submitted", "auto-replied")
	h.SetContentType("multipart/report", map[string]string{"report-type": "delivery-status"})
	var buf bytes.Buffer
	mw, err := message.CreateWriter(&buf, h.Header)
	if err != nil {
		return nil, err
	}
	parts := []struct {
		ct   string
		body string
	}{
		{"text/plain", fmt.Sprintf("%s\r\n\r\n%s\r\n", u.why, diagnostic)},
		{"message/delivery-status", fmt.Sprintf("Reporting-MTA: dns; %s\r\nArrival-Date: %s\r\n\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: %s\r\n%s",
			sh.Hostname, m.Queued.Format(time.RFC1123Z), m.To, u.status, remote)},
		{"text/rfc822-headers", string(replyHeader(m.Raw))},
	}
	for _, p := range parts {
		var ph message.Header
		ph.SetContentType(p.ct, nil)
		w, err := mw.CreatePart(ph)
		if err != nil {
			return nil, err
		}
		if _, err := io.WriteString(w, p.body); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// replyHeader is a composed message's header, as its bytes.
func replyHeader(raw []byte) []byte {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[:i+2]
	}
	return raw
}

// span says a duration as a person would: in days when it is whole days.
func span(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}
