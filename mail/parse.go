package mail

import (
	"bytes"
	"dirigent/store"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode"

	_ "github.com/emersion/go-message/charset" // ISO-8859-1/15, Windows-1252 and more, for German mail
	gomail "github.com/emersion/go-message/mail"
	"golang.org/x/net/html"
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
	// Automatic marks mail no person wrote: auto-replies, bounces, lists.
	Automatic bool
}

// ErrUnreadable wraps every reason a message cannot be read at all.
var ErrUnreadable = errors.New("unreadable message")

// ErrNoAttachment: the message has no attachment of that number.
var ErrNoAttachment = errors.New("no such attachment")

// Parse reads a raw message: MIME multipart, quoted-printable and base64,
// encoded-word headers, charsets. A broken part is skipped, not fatal;
// only a message without a usable From or with a broken header is.
func Parse(raw []byte) (*Parsed, error) {
	r, err := reader(raw)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	h := r.Header
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

	var plain, htmlText string
	walk(r, func(ct string, body io.Reader) {
		b, _ := io.ReadAll(io.LimitReader(body, maxTextBytes))
		switch {
		case ct == "text/plain" && plain == "":
			plain = string(b)
		case ct == "text/html" && htmlText == "":
			htmlText = htmlToText(b)
		}
	}, func(a store.Attachment, body io.Reader) bool {
		a.Size, _ = io.Copy(io.Discard, body)
		p.Attachments = append(p.Attachments, a)
		return true
	})
	p.Text = plain
	if strings.TrimSpace(p.Text) == "" {
		p.Text = htmlText
	}
	p.Text = strings.TrimSpace(strings.ReplaceAll(strings.ToValidUTF8(p.Text, "\uFFFD"), "\r\n", "\n"))
	return p, nil
}

// AttachmentOf returns attachment n of a raw message (0 is the first, in
// the order Parse lists them), decoded: ErrNoAttachment if it has fewer.
// Of a broken part (bad base64, cut off), what decodes up to the break,
// as Parse counts it.
func AttachmentOf(raw []byte, n int) (store.Attachment, []byte, error) {
	if n < 0 {
		return store.Attachment{}, nil, ErrNoAttachment
	}
	r, err := reader(raw)
	if err != nil {
		return store.Attachment{}, nil, err
	}
	defer r.Close()
	var (
		found store.Attachment
		data  []byte
		i     int
	)
	err = ErrNoAttachment
	walk(r, func(string, io.Reader) {}, func(a store.Attachment, body io.Reader) bool {
		if i++; i <= n {
			return true
		}
		data, _ = io.ReadAll(body)
		found, found.Size, err = a, int64(len(data)), nil
		return false
	})
	return found, data, err
}

// reader opens a raw message: a header it cannot read makes it
// unreadable; a charset it does not know is read as it is.
func reader(raw []byte) (*gomail.Reader, error) {
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil && !isUnknownCharset(err) {
		return nil, fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	return r, nil
}

// walk goes through the parts of a message after its header, in order:
// text/plain and text/html parts to text, every attachment (a part with a
// file name, or inline content that is not text) to attachment, which
// says whether to go on. A part in an unknown charset is skipped; a
// broken part ends the walk, and what came before it stays.
func walk(r *gomail.Reader, text func(ct string, body io.Reader), attachment func(a store.Attachment, body io.Reader) bool) {
	for {
		part, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			if isUnknownCharset(err) {
				continue
			}
			return
		}
		switch ph := part.Header.(type) {
		case *gomail.InlineHeader:
			ct, _, _ := ph.ContentType()
			if ct == "text/plain" || ct == "text/html" {
				text(ct, part.Body)
			} else if !attachment(store.Attachment{Name: inlineName(ph), Type: ct}, part.Body) {
				return
			}
		case *gomail.AttachmentHeader:
			name, _ := ph.Filename()
			ct, _, _ := ph.ContentType()
			if !attachment(store.Attachment{Name: name, Type: ct}, part.Body) {
				return
			}
		}
	}
}

func isUnknownCharset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unknown charset")
}

func inlineName(h *gomail.InlineHeader) string {
	_, params, err := h.ContentDisposition()
	if err == nil && params["filename"] != "" {
		return params["filename"]
	}
	_, params, _ = mime.ParseMediaType(h.Get("Content-Type"))
	return params["name"]
}

// automatic reports mail that a program sent: auto-replies, bounces,
// mailing lists. They must never be answered automatically (mail loops).
func automatic(h gomail.Header, from string) bool {
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
	local, _, _ := strings.Cut(strings.ToLower(from), "@")
	return local == "mailer-daemon" || local == "postmaster" || strings.HasPrefix(local, "noreply") || strings.HasPrefix(local, "no-reply") || strings.HasPrefix(local, "donotreply")
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
