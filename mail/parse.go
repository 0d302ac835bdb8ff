package mail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // ISO-8859-1/15, Windows-1252 and more, for German mail
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/net/html"

	"dirigent/store"
)

// maxTextBytes bounds the text kept from one message.
const maxTextBytes = 1 << 20

// Parsed is what dirigent reads from a message. The raw bytes stay in
// the store; this is derived from them and can be derived again.
type Parsed struct {
	MessageID   string
	InReplyTo   []string
	References  []string
	From        string // address
	FromName    string
	ReplyTo     string
	ReplyToName string
	Subject     string
	Text        string // the readable text: text/plain, else text/html made readable
	Attachments []store.Attachment
	// Automatic marks mail no person wrote: auto-replies, bounces, lists,
	// the mail system's (mailer-daemon@, postmaster@). (A noreply@
	// sender's is a program's too, unless it wrote on behalf of whom
	// answers go to: the channel tells, knowing its own addresses.)
	Automatic bool
	// Bounce: the message is a delivery status notification saying that
	// a message did not reach its recipient.
	Bounce *Bounce
}

// ErrUnreadable wraps every reason a message cannot be read at all.
var ErrUnreadable = errors.New("unreadable message")

// ErrNoAttachment: the message has no attachment of that number.
var ErrNoAttachment = errors.New("no such attachment")

// maxAttachments bounds the attachments Parse lists, and a contact
// keeps: a message of a million empty parts must not become a contact
// the desk cannot show.
const maxAttachments = 100

// maxHeaderBytes bounds a message's header, as go-message's reader does.
const maxHeaderBytes = 1 << 20

// Parse reads a raw message: MIME multipart, quoted-printable and base64,
// encoded-word headers, charsets. A broken part is skipped, not fatal;
// only a message without a usable From or with a broken header is.
func Parse(raw []byte) (*Parsed, error) {
	h, body, err := open(raw)
	if err != nil {
		return nil, err
	}
	p := &Parsed{}
	p.Subject, _ = h.Subject()
	p.MessageID, _ = h.MessageID()
	p.InReplyTo, _ = h.MsgIDList("In-Reply-To")
	p.References, _ = h.MsgIDList("References")
	from, err := h.AddressList("From")
	if err != nil || len(from) == 0 {
		return nil, fmt.Errorf("%w: no usable From address (%q)", ErrUnreadable, h.Get("From"))
	}
	p.From, p.FromName = from[0].Address, from[0].Name
	if rt, err := h.AddressList("Reply-To"); err == nil && len(rt) > 0 {
		p.ReplyTo, p.ReplyToName = rt[0].Address, rt[0].Name
	}
	p.Automatic = automatic(h, p.From)
	var report *deliveryReport
	if isDeliveryReport(h.Header) {
		report = &deliveryReport{}
	}

	var plain, htmlText string
	walk(h.Header, body, func(ct string, body io.Reader) {
		b, _ := io.ReadAll(io.LimitReader(body, maxTextBytes))
		switch {
		case ct == "text/plain" && plain == "":
			plain = string(b)
		case ct == "text/html" && htmlText == "":
			htmlText = htmlToText(b)
		}
	}, func(a store.Attachment, body io.Reader) bool {
		if report != nil {
			body = report.read(a.Type, body)
		}
		if len(p.Attachments) < maxAttachments {
			a.Size, _ = io.Copy(io.Discard, body)
			p.Attachments = append(p.Attachments, a)
		}
		return true
	})
	if report == nil && isProgram(p.From) {
		report = qmailReport(plain)
	}
	if report != nil {
		p.Bounce = report.bounce(p)
	}
	p.Text = plain
	if strings.TrimSpace(p.Text) == "" {
		p.Text = htmlText
	}
	p.Text = strings.TrimSpace(strings.ReplaceAll(strings.ToValidUTF8(p.Text, "\uFFFD"), "\r\n", "\n"))
	return p, nil
}

// WriteAttachment writes attachment n of a raw message (0 is the first,
// in the order Parse lists them), decoded from its transfer encoding,
// its bytes as sent, to the writer create gives for it (create sees its
// name and type, and may refuse it). Of a broken part (bad base64, cut off),
// what decodes up to the break, as Parse counts it. It returns the bytes
// written; ErrNoAttachment if the message has fewer attachments.
func WriteAttachment(raw []byte, n int, create func(store.Attachment) (io.Writer, error)) (int64, error) {
	if n < 0 {
		return 0, ErrNoAttachment
	}
	h, body, err := open(raw)
	if err != nil {
		return 0, err
	}
	var (
		written int64
		i       int
	)
	err = ErrNoAttachment
	walk(h.Header, body, func(string, io.Reader) {}, func(a store.Attachment, body io.Reader) bool {
		if i++; i <= n {
			return true
		}
		var w io.Writer
		if w, err = create(a); err == nil {
			written, err = io.Copy(markedWriter{w}, body)
			if err != nil && !errors.Is(err, errWrite) {
				err = nil // the break of a broken part, not the writer's
			}
		}
		return false
	})
	return written, err
}

// errWrite marks a failure of WriteAttachment's writer, which fails the
// copy, apart from a break in the part, which only ends it early.
var errWrite = errors.New("writing the attachment")

type markedWriter struct{ w io.Writer }

func (m markedWriter) Write(p []byte) (int, error) {
	n, err := m.w.Write(p)
	if err != nil {
		err = fmt.Errorf("%w: %w", errWrite, err)
	}
	return n, err
}

// open reads a raw message's header; the body follows, still encoded.
func open(raw []byte) (gomail.Header, io.Reader, error) {
	lr := &io.LimitedReader{R: bytes.NewReader(raw), N: maxHeaderBytes}
	br := bufio.NewReader(lr)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return gomail.Header{}, nil, fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	lr.N = math.MaxInt64
	return gomail.Header{Header: message.Header{Header: h}}, br, nil
}

// walk goes through the leaves of an entity (a message, or a part of
// one) in order, depth first, with multiparts opened: a text/plain or
// text/html part without a file name goes to text, decoded from its
// transfer encoding and charset to UTF-8; every other part is an
// attachment (files, inline images, forwarded messages), which goes to
// attachment decoded from its transfer encoding only, and which says
// whether to go on. An unknown charset or transfer encoding leaves the
// bytes as they are; a broken multipart ends the walk, and what came
// before it stays. walk reports whether it went through to the end.
func walk(h message.Header, body io.Reader, text func(ct string, body io.Reader), attachment func(a store.Attachment, body io.Reader) bool) bool {
	ct, params, _ := h.ContentType()
	if strings.HasPrefix(ct, "multipart/") {
		mr := textproto.NewMultipartReader(body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err != nil {
				return errors.Is(err, io.EOF)
			}
			if !walk(message.Header{Header: part.Header}, part, text, attachment) {
				return false
			}
		}
	}
	disposition, _, _ := h.ContentDisposition()
	name := filename(h)
	if (ct == "text/plain" || ct == "text/html") && name == "" && disposition != "attachment" {
		e, _ := message.New(h, body)
		text(ct, e.Body)
		return true
	}
	// Its bytes as sent: go-message converts the charset of text/*
	// parts, so it reads this one as untyped.
	untyped := h.Copy()
	untyped.Set("Content-Type", "application/octet-stream")
	e, _ := message.New(untyped, body)
	return attachment(store.Attachment{Name: name, Type: ct}, e.Body)
}

// filename is a part's file name, from Content-Disposition, else from
// Content-Type's name, decoded.
func filename(h message.Header) string {
	name, _ := (&gomail.AttachmentHeader{Header: h}).Filename()
	return name
}

// automatic reports mail that a program sent: auto-replies, bounces,
// mailing lists. They must never be answered automatically (mail loops).
func automatic(h gomail.Header, from string) bool {
	if isDeliveryReport(h.Header) {
		return true
	}
	if v := strings.ToLower(h.Get("Auto-Submitted")); v != "" && v != "no" {
		return true
	}
	switch strings.ToLower(h.Get("Precedence")) {
	case "bulk", "junk", "list", "auto_reply":
		return true
	}
	if h.Get("List-Id") != "" || h.Get("X-Autoreply") != "" || h.Get("X-Autorespond") != "" {
		return true
	}
	return isProgram(from)
}

// isProgram reports the mail system's own addresses.
func isProgram(addr string) bool {
	local, _, _ := strings.Cut(strings.ToLower(addr), "@")
	return local == "mailer-daemon" || local == "postmaster"
}

// noReply reports a sender address that takes no answers.
func noReply(from string) bool {
	local, _, _ := strings.Cut(strings.ToLower(from), "@")
	return strings.HasPrefix(local, "noreply") || strings.HasPrefix(local, "no-reply") || strings.HasPrefix(local, "donotreply")
}

// htmlToText makes an HTML-only mail readable: the text of the document,
// with line breaks for blocks and line-break elements, without scripts and
// styles.
func htmlToText(b []byte) string {
	z := html.NewTokenizer(bytes.NewReader(b))
	var out strings.Builder
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return collapseBlankLines(out.String())
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "head":
				skip++
			case "br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "table", "blockquote":
				out.WriteByte('\n')
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "head":
				if skip > 0 {
					skip--
				}
			case "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "table":
				out.WriteByte('\n')
			}
		case html.TextToken:
			if skip == 0 {
				out.WriteString(collapseSpace(string(z.Text())))
			}
		}
	}
}

// collapseSpace turns every run of white space into one space, as a
// browser shows text.
func collapseSpace(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

func collapseBlankLines(s string) string {
	var lines []string
	blank := 0
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			if blank++; blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		lines = append(lines, l)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}
