package sip

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
)

// Message is a SIP MESSAGE (RFC 3428) as the message channel takes it:
// the daemon converts it to a chat.PeerMessage, which has the same fields.
type Message struct {
	// From identifies the customer: the sender's phone number (E.164)
	// when it has one, else its SIP URI.
	From string
	// ReplyTo is where answers go: the sender's URI at the address the
	// message came from, so they pass the same NAT or trunk.
	ReplyTo string
	// AcceptLanguage is the sender's Accept-Language (RFC 3261 §20.3),
	// its headers joined into one list; empty when it sent none.
	AcceptLanguage string
	Text           string
}

// Refusals OnMessage may return (wrapped) to choose the answer: 413,
// 400 and 503 with Retry-After. Any other error is a 500.
var (
	ErrMessageTooLarge = errors.New("message too large")
	ErrMessageInvalid  = errors.New("message not acceptable")
	ErrMessageRate     = errors.New("too many messages")
)

// maxMessageBody bounds a MESSAGE body before the message channel's own
// limit: RFC 3428 keeps pager-mode messages small, and the body arrives
// in one datagram or read anyway.
const maxMessageBody = 64 << 10

// messageRetryAfter is the Retry-After of a MESSAGE refused for its
// rate, in seconds: the message channel's limit is per minute.
const messageRetryAfter = 10

// onMessage takes a MESSAGE from a trunk or an agent's SIP account into
// the message channel: 202 once it is stored.
func (c *Channel) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	refuse := func(code int, reason string, hdrs ...sip.Header) {
		c.metrics.messages.WithLabelValues("in", "refused").Inc()
		res := sip.NewResponseFromRequest(req, code, reason, nil)
		for _, h := range hdrs {
			res.AppendHeader(h)
		}
		tx.Respond(res)
	}
	if c.draining.Load() {
		c.metrics.rejected.WithLabelValues("draining").Inc()
		refuse(sip.StatusServiceUnavailable, "Service Unavailable (shutting down)")
		return
	}
	if to := req.To(); to != nil && to.Params.Has("tag") {
		// RFC 3428: MESSAGE inside a dialog is not taken here; dirigent's
		// dialogs are calls.
		refuse(sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	from, answered := c.messageSender(req, tx)
	if answered {
		c.metrics.messages.WithLabelValues("in", "refused").Inc()
		return
	}
	text, err := messageText(req)
	if errors.Is(err, errMediaType) {
		c.metrics.rejected.WithLabelValues("message").Inc()
		refuse(sip.StatusUnsupportedMediaType, "Unsupported Media Type ("+err.Error()+")", sip.NewHeader("Accept", "text/plain"))
		return
	}
	if err != nil {
		c.metrics.rejected.WithLabelValues("message").Inc()
		refuse(sip.StatusBadRequest, "Bad Request ("+err.Error()+")")
		return
	}
	m := Message{From: from, ReplyTo: replyURI(req), AcceptLanguage: acceptLanguage(req), Text: text}
	switch err := c.deps.OnMessage(context.Background(), m); {
	case err == nil:
		c.metrics.messages.WithLabelValues("in", "accepted").Inc()
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusAccepted, "Accepted", nil))
	case errors.Is(err, ErrMessageTooLarge):
		c.metrics.rejected.WithLabelValues("message").Inc()
		refuse(sip.StatusRequestEntityTooLarge, "Request Entity Too Large")
	case errors.Is(err, ErrMessageInvalid):
		c.metrics.rejected.WithLabelValues("message").Inc()
		refuse(sip.StatusBadRequest, "Bad Request ("+headerText(err.Error(), maxReasonText)+")")
	case errors.Is(err, ErrMessageRate):
		c.metrics.rejected.WithLabelValues("message_rate").Inc()
		refuse(sip.StatusServiceUnavailable, "Service Unavailable (too many messages)",
			sip.NewHeader("Retry-After", strconv.Itoa(messageRetryAfter)))
	default:
		c.deps.Logger.Error("taking a SIP MESSAGE", "from", from, "err", err)
		c.metrics.messages.WithLabelValues("in", "error").Inc()
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Error", nil))
	}
}

// messageSender checks who may send a MESSAGE and says who it is from.
// A trunk (by address, or by Proxy-Authorization; also when no agent
// accounts exist) sends on behalf of its callers: the sender is the
// number in P-Asserted-Identity or From. Anyone else must authenticate
// as one of the SIP accounts and sends as that account. answered: the
// request got its answer (a challenge or a refusal).
func (c *Channel) messageSender(req *sip.Request, tx sip.ServerTransaction) (from string, answered bool) {
	if len(c.trunksAt(req)) > 0 || req.GetHeader("Proxy-Authorization") != nil || len(c.registrar.agents()) == 0 {
		ok, err := c.trunkAllows(req, tx)
		if !ok {
			if err != nil { // not answered yet
				c.metrics.rejected.WithLabelValues("trunk").Inc()
				tx.Respond(sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden (not a configured trunk)", nil))
			}
			return "", true
		}
		number, _ := callerID(req)
		if number == "anonymous" {
			c.metrics.rejected.WithLabelValues("message").Inc()
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden (anonymous messages are not taken)", nil))
			return "", true
		}
		if e164, err := c.deps.Journey.Normalizer().Phone(number); err == nil {
			return e164, false
		}
		host := "unknown"
		if f := req.From(); f != nil && f.Address.Host != "" {
			host = f.Address.Host
		}
		return "sip:" + number + "@" + host, false
	}
	user, err := c.authenticate(req, tx, "Authorization", c.registrar.password(nil))
	if user == "" {
		if err != nil {
			c.deps.Logger.Warn("answering a SIP MESSAGE", "err", err)
		}
		if req.GetHeader("Authorization") != nil {
			c.metrics.rejected.WithLabelValues("auth").Inc()
		}
		return "", true
	}
	if f := req.From(); f == nil || f.Address.User != user {
		c.metrics.rejected.WithLabelValues("auth").Inc()
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusForbidden, "Forbidden (From is not the authenticated user)", nil))
		return "", true
	}
	return "sip:" + user + "@" + c.cfg.Realm, false
}

var errMediaType = errors.New("text/plain only")

// messageText is a MESSAGE's body as text: text/plain in UTF-8 (or
// US-ASCII, its subset).
func messageText(req *sip.Request) (string, error) {
	ct := "text/plain"
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "text/plain" {
		return "", errMediaType
	}
	if cs := strings.ToLower(params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		return "", fmt.Errorf("%w, in UTF-8", errMediaType)
	}
	body := req.Body()
	switch {
	case len(strings.TrimSpace(string(body))) == 0:
		return "", errors.New("empty message")
	case len(body) > maxMessageBody:
		return "", fmt.Errorf("message over %d bytes", maxMessageBody)
	case !utf8.Valid(body):
		return "", errors.New("message not UTF-8")
	}
	return string(body), nil
}

// acceptLanguage is a request's Accept-Language headers as one list, as
// RFC 3261 §7.3.1 allows them to be split.
func acceptLanguage(req *sip.Request) string {
	var list []string
	for _, h := range req.GetHeaders("Accept-Language") {
		if v := strings.TrimSpace(h.Value()); v != "" {
			list = append(list, v)
		}
	}
	return strings.Join(list, ", ")
}

// replyURI is where answers to a request's sender go: its From user at
// the address the request came from, over the same transport.
func replyURI(req *sip.Request) string {
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return ""
	}
	user := ""
	if f := req.From(); f != nil && isUserPart(f.Address.User) {
		user = f.Address.User
	}
	u := sip.Uri{Scheme: "sip", User: user, Host: src.Addr().Unmap().String(), Port: int(src.Port())}
	if src.Addr().Is6() && !src.Addr().Is4In6() {
		u.Host = "[" + u.Host + "]"
	}
	switch t := strings.ToLower(req.Transport()); t {
	case "tcp", "tls", "ws", "wss":
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", t)
	}
	return u.String()
}

// maxReasonText bounds the text of an error in a reason phrase: long
// enough for a wrapped error's message, short enough for a phone's
// display.
const maxReasonText = 100

// messageTimeout bounds the wait for a phone's answer to a MESSAGE: an
// agent waits for it on the desk, so less than RFC 3261's 32 s Timer F,
// yet time for four retransmissions over UDP.
const messageTimeout = 10 * time.Second

// SendMessage sends text as a SIP MESSAGE to a URI Message.ReplyTo
// gave, and waits for its final answer: an error unless 2xx.
func (c *Channel) SendMessage(ctx context.Context, to, text string) (err error) {
	defer func() {
		result := "sent"
		if err != nil {
			result = "failed"
		}
		c.metrics.messages.WithLabelValues("out", result).Inc()
	}()
	var uri sip.Uri
	if err := sip.ParseUri(to, &uri); err != nil || uri.Host == "" {
		return fmt.Errorf("sip: no address to answer %q at", to)
	}
	req := sip.NewRequest(sip.MESSAGE, uri)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "dirigent", Host: c.host, Port: c.port}}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: uri.User, Host: uri.Host, Port: uri.Port}})
	req.AppendHeader(sip.NewHeader("Content-Type", "text/plain;charset=UTF-8"))
	req.SetBody([]byte(text))
	client := c.client
	if t, ok := uri.UriParams.Get("transport"); ok && !strings.EqualFold(t, "udp") {
		req.SetTransport(strings.ToUpper(t))
		client = c.tcpCl
	}
	ctx, cancel := context.WithTimeout(ctx, messageTimeout)
	defer cancel()
	res, err := client.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("sip: MESSAGE to %s: %w", to, err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("sip: MESSAGE to %s: %d %s", to, res.StatusCode, res.Reason)
	}
	return nil
}
