package mail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"

	"dirigent/store"
)

// Bounce is what a delivery status notification (RFC 3464: the mail
// system's "Undelivered Mail Returned to Sender") says about a message
// that did not reach its recipient.
type Bounce struct {
	MessageID  string // of the message that was not delivered
	Recipient  string
	Status     string // 5.1.1
	Diagnostic string // the receiving server's answer: 550 5.1.1 … User unknown
}

// Reason is the bounce in one line, for the reply's delivery note.
func (b *Bounce) Reason() string {
	why := b.Diagnostic
	if why == "" {
		why = "status " + b.Status
	}
	if b.Recipient != "" {
		why = b.Recipient + ": " + why
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
	// for the message, one per recipient) looked through.
	maxStatusBytes  = 64 << 10
	maxStatusBlocks = 100
)

// deliveryReport gathers what a multipart/report of report-type
// delivery-status says, from its parts as Parse's walk meets them.
type deliveryReport struct {
	failed   *Bounce // the first recipient whose Action is failed
	original string  // the Message-ID of the message reported on
}

// isDeliveryReport reports a message (or part) whose content type makes
// it a delivery status notification.
func isDeliveryReport(h message.Header) bool {
	ct, params, _ := h.ContentType()
	return ct == "multipart/report" && strings.EqualFold(params["report-type"], "delivery-status")
}

// read takes what it needs from a part of the report, and gives back the
// part's bytes whole for the walk to go on with.
func (r *deliveryReport) read(ct string, body io.Reader) io.Reader {
	var limit int64
	switch ct {
	case "message/delivery-status", "message/global-delivery-status":
		if r.failed != nil {
			return body
		}
		limit = maxStatusBytes
	case "message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers":
		if r.original != "" {
			return body
		}
		limit = maxHeaderBytes
	default:
		return body
	}
	b, _ := io.ReadAll(io.LimitReader(body, limit))
	// A part of header fields alone may end without the blank line that
	// ends a header.
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(b), strings.NewReader("\r\n\r\n")))
	if limit == maxHeaderBytes {
		if h, err := textproto.ReadHeader(br); err == nil {
			mh := gomail.Header{Header: message.Header{Header: h}}
			r.original, _ = mh.MessageID()
		}
	} else {
		r.failed = failedRecipient(br, int64(len(b)))
	}
	return io.MultiReader(bytes.NewReader(b), body)
}

// failedRecipient reads a message/delivery-status part: blocks of
// fields, the message's first, then one per recipient.
func failedRecipient(br *bufio.Reader, size int64) *Bounce {
	for range maxStatusBlocks {
		if _, err := br.Peek(1); err != nil {
			return nil
		}
		h, err := textproto.ReadHeader(br)
		if err != nil {
			return nil
		}
		action, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(h.Get("Action"))), " ")
		if action != "failed" {
			continue
		}
		return &Bounce{
			Recipient:  typedValue(h.Get("Final-Recipient")),
			Status:     strings.TrimSpace(h.Get("Status")),
			Diagnostic: collapseSpace(typedValue(h.Get("Diagnostic-Code"))),
		}
	}
	return nil
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
	if r.failed == nil {
		return nil
	}
	b := *r.failed
	b.MessageID = r.original
	if b.MessageID == "" && len(p.InReplyTo) > 0 {
		b.MessageID = p.InReplyTo[0]
	}
	if b.MessageID == "" && len(p.References) > 0 {
		b.MessageID = p.References[len(p.References)-1]
	}
	if b.MessageID == "" {
		return nil
	}
	return &b
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
	if r.err.EnhancedCode != smtp.NoEnhancedCode && r.err.EnhancedCode != (smtp.EnhancedCode{}) {
		code = " " + r.enhancedCode()
	}
	return fmt.Sprintf("smarthost answered %d%s: %s", r.err.Code, code, r.err.Message)
}

func (r *refusal) enhancedCode() string {
	e := r.err.EnhancedCode
	return fmt.Sprintf("%d.%d.%d", e[0], e[1], e[2])
}

// answered makes a smarthost's error answer a refusal. aboutReply: it
// answered the reply's recipient or content, not dirigent's sender
// address or login. Only such a 5xx refuses the reply for good, as an MTA
// bounces it; and not a 5.7.x (security or policy: "relay access denied",
// "authentication required"), which refuses dirigent's own set-up, and
// which an admin mends, so that every reply goes once it is mended.
func answered(err error, aboutReply bool) error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return err
	}
	final := aboutReply && se.Code/100 == 5 && !(se.EnhancedCode[0] == 5 && se.EnhancedCode[1] == 7)
	return &refusal{err: se, final: final}
}

// refusalReport writes the delivery status notification for a reply the
// smarthost refused for good, as an MTA writes one to the sender: it is
// stored as the mail that came back, so that the refusal reaches the
// conversation, and an agent, as a bounce from further on does.
func (c *Channel) refusalReport(m *store.OutboundMail, r *refusal, at time.Time) ([]byte, error) {
	sh := c.cfg.Smarthost
	relay, _, _ := net.SplitHostPort(sh.Addr)
	status := "5.0.0"
	if r.err.EnhancedCode[0] == 5 {
		status = r.enhancedCode()
	}
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
	diagnostic := strings.ReplaceAll(fmt.Sprintf("%d %s", r.err.Code, r.err.Message), "\n", " ")
	if status != "5.0.0" {
		diagnostic = fmt.Sprintf("%d %s %s", r.err.Code, status, strings.ReplaceAll(r.err.Message, "\n", " "))
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
