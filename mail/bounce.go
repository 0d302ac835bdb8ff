package mail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
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
	MessageID string    // of the message that was not delivered
	Failed    []Failure // the recipients it failed for, at most maxFailures
}

// Failure is one recipient a message was not delivered to, and why.
type Failure struct {
	Recipient  string // Final-Recipient
	Original   string // Original-Recipient, when the report has it: the address as sent, before forwarding
	Status     string // 5.1.1
	Diagnostic string // the receiving server's answer: 550 5.1.1 … User unknown
}

// For is the failure for a message sent to addr: the one naming it, else
// the report's only one (an alias the report names by where it led);
// nil when the report does not say that addr failed.
func (b *Bounce) For(addr string) *Failure {
	for i, f := range b.Failed {
		if strings.EqualFold(f.Recipient, addr) || strings.EqualFold(f.Original, addr) {
			return &b.Failed[i]
		}
	}
	if len(b.Failed) == 1 {
		return &b.Failed[0]
	}
	return nil
}

// Reason is the failure in one line, for the reply's delivery note.
func (f *Failure) Reason() string {
	why := f.Diagnostic
	if why == "" {
		why = "status " + f.Status
	}
	if f.Recipient != "" {
		why = f.Recipient + ": " + why
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
	// message/delivery-status part; maxStatusBlocks the field blocks (one
	// for the message, one per recipient) looked through; maxFailures the
	// failed recipients kept.
	maxStatusBytes  = 64 << 10
	maxStatusBlocks = 100
	maxFailures     = 10
)

// deliveryReport gathers what a multipart/report of a delivery-status
// report type says, from its parts as Parse's walk meets them.
type deliveryReport struct {
	statusRead bool
	failed     []Failure
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
	// A part of header fields alone may end without the blank line that
	// ends a header.
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(b), strings.NewReader("\r\n\r\n")))
	if status {
		r.statusRead, r.failed = true, failures(br)
	} else if h, err := textproto.ReadHeader(br); err == nil {
		mh := gomail.Header{Header: message.Header{Header: h}}
		r.original, _ = mh.MessageID()
	}
	return io.MultiReader(bytes.NewReader(b), body)
}

// failures reads a message/delivery-status part: blocks of fields, the
// message's first, then one per recipient; it returns the recipients
// whose Action is failed.
func failures(br *bufio.Reader) []Failure {
	var out []Failure
	for range maxStatusBlocks {
		if _, err := br.Peek(1); err != nil || len(out) == maxFailures {
			break
		}
		h, err := textproto.ReadHeader(br)
		if err != nil {
			break
		}
		// "failed", "failed (bad address)", "failed(x)"
		action := strings.ToLower(strings.TrimSpace(h.Get("Action")))
		if i := strings.IndexAny(action, " (;"); i >= 0 {
			action = action[:i]
		}
		if action != "failed" {
			continue
		}
		out = append(out, Failure{
			Recipient:  typedValue(h.Get("Final-Recipient")),
			Original:   typedValue(h.Get("Original-Recipient")),
			Status:     strings.TrimSpace(h.Get("Status")),
			Diagnostic: collapseSpace(typedValue(h.Get("Diagnostic-Code"))),
		})
	}
	return out
}

// typedValue is a report field's value without its type: "rfc822;
// joe@example.org" is joe@example.org, "smtp; 550 …" is 550 ….
func typedValue(v string) string {
	if _, after, ok := strings.Cut(v, ";"); ok {
		v = after
	}
	return strings.TrimSpace(v)
}

// bounce is the report's bounce, once the walk is through: about the
// message the report returns, or else the one it answers (p's
// In-Reply-To, References); nil when it reports no failure, or on no
// message that can be told.
func (r *deliveryReport) bounce(p *Parsed) *Bounce {
	if len(r.failed) == 0 {
		return nil
	}
	b := &Bounce{MessageID: r.original, Failed: r.failed}
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
	if hasEnhancedCode(r.err) {
		code = " " + r.enhancedCode()
	}
	return fmt.Sprintf("smarthost answered %d%s: %s", r.err.Code, code, r.err.Message)
}

func (r *refusal) enhancedCode() string {
	e := r.err.EnhancedCode
	return fmt.Sprintf("%d.%d.%d", e[0], e[1], e[2])
}

// hasEnhancedCode: the answer had an RFC 3463 status (go-smtp leaves
// the code's zero value, or NoEnhancedCode, when it had none).
func hasEnhancedCode(se *smtp.SMTPError) bool {
	c := se.EnhancedCode[0]
	return c == 2 || c == 4 || c == 5
}

// answered makes a smarthost's error answer a refusal. from is the
// reply's sender; aboutReply: the answer was to the reply's recipient or
// content, not to its sender address or dirigent's login.
//
// Only some of those refuse the reply for good, as an MTA bounces it:
// a permanent status (RFC 3463) about the recipient's address or mailbox,
// the message's size or its content. Everything else is retried: a
// temporary refusal; one without a status, which cannot be told apart
// from one about dirigent's own set-up; a security or policy status
// (5.7.x: "relay access denied", "authentication required"); and one
// naming the sender, which Postfix makes at RCPT ("Sender address
// rejected"). Those an admin mends, and then every reply goes; meanwhile
// an agent can stop one.
func answered(err error, from string, aboutReply bool) error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return err
	}
	return &refusal{err: se, final: aboutReply && se.Code/100 == 5 && refusesReply(se) && !strings.Contains(strings.ToLower(se.Message), strings.ToLower(from))}
}

// refusesReply reports a permanent status about a message's recipient
// or content: a bad mailbox, domain or address syntax, a moved mailbox or
// a domain that takes no mail (5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10); the
// mailbox (5.2.x); a message too big (5.3.4); its content (5.6.x).
func refusesReply(se *smtp.SMTPError) bool {
	e := se.EnhancedCode
	if !hasEnhancedCode(se) || e[0] != 5 {
		return false
	}
	switch e[1] {
	case 1:
		return slices.Contains([]int{1, 2, 3, 6, 10}, e[2])
	case 2, 6:
		return true
	case 3:
		return e[2] == 4
	}
	return false
}

// refusalReport writes the delivery status notification for a reply the
// smarthost refused for good, as an MTA writes one to the sender: it is
// stored as the mail that came back, so that the refusal reaches the
// conversation, and an agent, as a bounce from further on does.
func (c *Channel) refusalReport(m *store.OutboundMail, r *refusal, at time.Time) ([]byte, error) {
	sh := c.cfg.Smarthost
	relay, _, _ := net.SplitHostPort(sh.Addr)
	status, diagnostic := "5.0.0", fmt.Sprintf("%d %s", r.err.Code, r.err.Message)
	if hasEnhancedCode(r.err) {
		status = r.enhancedCode()
		diagnostic = fmt.Sprintf("%d %s %s", r.err.Code, status, r.err.Message)
	}
	diagnostic = strings.ReplaceAll(diagnostic, "\n", " ")
	var h gomail.Header
	h.SetDate(at)
	h.SetAddressList("From", []*gomail.Address{{Name: "Mail Delivery System", Address: "MAILER-DAEMON@" + sh.Hostname}})
	h.SetAddressList("To", []*gomail.Address{{Address: m.From}})
	h.SetSubject("Undelivered Mail Returned to Sender")
	h.SetMessageID(fmt.Sprintf("refused-%d@%s", m.ID, sh.Hostname))
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
		{"text/plain", fmt.Sprintf("The mail server %s refused the reply to %s for good, and it was not sent:\r\n\r\n%s\r\n", relay, m.To, diagnostic)},
		{"message/delivery-status", fmt.Sprintf("Reporting-MTA: dns; %s\r\nArrival-Date: %s\r\n\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: %s\r\nRemote-MTA: dns; %s\r\nDiagnostic-Code: smtp; %s\r\n",
			sh.Hostname, m.Queued.Format(time.RFC1123Z), m.To, status, relay, diagnostic)},
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
