package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

// call is one customer's call: the caller's leg, answered by dirigent at
// once, and, once an agent answers, the agent's leg bridged to it.
type call struct {
	c        *Channel
	callID   string
	dialog   *sipgo.DialogServerSession
	dialogUA *sipgo.DialogUA
	caller   *mediaLeg
	number   string // the caller's number (or SIP user), checked for use in headers
	name     string // the caller's display name, checked likewise
	route    Number
	contact  *store.Contact
	task     router.Task
	start    time.Time
	// movedTo is the queue the router last moved the call to (overflow),
	// set as the router tells it, under the router's lock and so in its
	// order, without the call's lock (see Channel.TaskEvent).
	movedTo atomic.Pointer[string]

	mu        sync.Mutex
	state     callState
	player    *player
	ringing   map[ringKey]context.CancelFunc // offer → stop ringing
	agent     string
	agentDlg  *sipgo.DialogClientSession
	agentLeg  *mediaLeg
	agentCall string // the agent leg's Call-ID
	answered  time.Time
	digits    chan byte
	done      chan struct{}
}

type callState uint8

const (
	stateAnswering callState = iota // 200 sent, waiting for ACK
	stateMenu                       // hearing the IVR prompt
	stateWaiting                    // queued, hearing hold audio (agents may be ringing)
	stateTalking                    // bridged to an agent
	stateEnded
)

// onInvite takes a new call from a trunk, or a re-INVITE within a call.
func (c *Channel) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		c.reinvite(req, tx)
		return
	}
	received := time.Now()
	reject := func(code int, reason, metric string) {
		if metric != "" {
			c.metrics.rejected.WithLabelValues(metric).Inc()
		}
		tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
	}
	if c.draining.Load() {
		reject(sip.StatusServiceUnavailable, "Service Unavailable (shutting down)", "draining")
		return
	}
	ok, err := c.trunkAllows(req, tx)
	if !ok {
		if err == nil { // answered with a challenge or 403 already
			return
		}
		reject(sip.StatusForbidden, "Forbidden (not a configured trunk)", "trunk")
		return
	}
	route, found := c.routeFor(req.Recipient.User)
	if !found {
		reject(sip.StatusNotFound, "Not Found (no such number)", "number")
		return
	}
	offer, err := parseSDP(req.Body())
	if errors.Is(err, errNoCodec) {
		reject(sip.StatusNotAcceptableHere, "Not Acceptable Here (PCMU or PCMA only)", "codec")
		return
	}
	if err != nil {
		reject(sip.StatusBadRequest, "Bad Request ("+err.Error()+")", "sdp")
		return
	}
	number, name := callerID(req)
	customer, err := c.identify(number, req)
	if err != nil {
		c.deps.Logger.Error("identifying a caller", "number", number, "err", err)
		reject(sip.StatusInternalServerError, "Server Error", "")
		return
	}
	ua := c.dialogUAFor(req)
	dlg, err := ua.ReadInvite(req, tx)
	if err != nil {
		reject(sip.StatusBadRequest, "Bad Request ("+err.Error()+")", "malformed")
		return
	}
	leg, err := c.newMediaLeg()
	if err != nil {
		c.deps.Logger.Error("no RTP port for a call", "err", err)
		dlg.Respond(sip.StatusServiceUnavailable, "Service Unavailable (no media port)", nil)
		return
	}
	pt := offer.codecs[0]
	leg.setRemote(offer.addr, pt, offer.dtmf)
	now := c.now()
	cl := &call{
		c: c, callID: req.CallID().Value(), dialog: dlg, dialogUA: ua, caller: leg, number: number, name: name,
		route: route, start: now, ringing: map[ringKey]context.CancelFunc{}, digits: make(chan byte, 4), done: make(chan struct{}),
	}
	cl.contact = &store.Contact{
		CustomerID: customer.ID, Channel: "voice", Direction: "in", Queue: route.Queue, Intent: route.Intent, Start: now,
		Subject: "call from " + number + " to " + req.Recipient.User,
	}
	err = c.deps.Store.AppendContact(context.Background(), cl.contact)
	if errors.Is(err, store.ErrNotFound) {
		// The caller's customer was erased or merged into another since
		// identify: the number now names a new customer or the kept one.
		if customer, err = c.identify(number, req); err == nil {
			cl.contact.CustomerID = customer.ID
			err = c.deps.Store.AppendContact(context.Background(), cl.contact)
		}
	}
	if err != nil {
		leg.close()
		c.deps.Logger.Error("recording a call", "err", err)
		dlg.Respond(sip.StatusInternalServerError, "Server Error", nil)
		return
	}
	cl.task = router.Task{ID: cl.contact.ID, Channel: router.Voice, Queue: route.Queue, CustomerID: customer.ID, ValueTier: customer.ValueTier, Arrived: now}
	if jc, err := c.deps.Journey.RoutingContextFor(customer.ID, now, nil); err == nil {
		cl.task.Repeat = jc.RepeatOf != nil
		cl.task.PreferredAgent = jc.LastAgent
	}
	c.active.Add(1)
	c.metrics.activeCalls.Inc()
	c.mu.Lock()
	c.byCallID[cl.callID] = cl
	c.byTask[cl.contact.ID] = cl
	c.mu.Unlock()

	answer := buildSDP(c.mediaIP, leg.port(), []uint8{pt}, offer.dtmf)
	c.metrics.setupSeconds.Observe(time.Since(received).Seconds())
	if err := dlg.RespondSDP(answer); err != nil {
		// Canceled before the answer, or no ACK came.
		c.deps.Logger.Debug("caller gone before the call was set up", "call", cl.contact.ID, "err", err)
		cl.finish(outcomeAbandoned, "")
		return
	}
	go cl.run()
}

// callerID is the caller's number and name, from P-Asserted-Identity (a
// trunk's verified identity) or From, with anything that cannot go into
// the agent's headers unchanged replaced.
func callerID(req *sip.Request) (number, name string) {
	if h := req.GetHeader("P-Asserted-Identity"); h != nil {
		var uri sip.Uri
		var params sip.HeaderParams
		if dn, err := sip.ParseAddressValue(h.Value(), &uri, &params); err == nil && uri.User != "" {
			number, name = uri.User, dn
		}
	}
	if number == "" {
		if f := req.From(); f != nil {
			number, name = f.Address.User, f.DisplayName
		}
	}
	if number == "" || len(number) > 64 || !isUserPart(number) {
		number = "anonymous"
	}
	return number, headerText(name, maxDisplayName)
}

func isUserPart(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("-_.!~*'()+&=$,;?/%", r):
		default:
			return false
		}
	}
	return true
}

// maxDisplayName bounds a caller's display name, as it stands in the
// agent's From and P-Asserted-Identity and as the customer's name.
const maxDisplayName = 64

// identify finds the caller's customer: by phone number, else (a SIP
// user name) by SIP URI.
func (c *Channel) identify(number string, req *sip.Request) (*store.Customer, error) {
	ctx := context.Background()
	_, name := callerID(req)
	cust, _, err := c.deps.Journey.Identify(ctx, journey.KindPhone, number, name)
	if errors.Is(err, journey.ErrBadIdentity) {
		host := "unknown"
		if f := req.From(); f != nil && f.Address.Host != "" {
			host = f.Address.Host
		}
		cust, _, err = c.deps.Journey.Identify(ctx, journey.KindSIP, number+"@"+host, name)
	}
	return cust, err
}

// routeFor says where calls to a dialled number go: a configured number,
// else an intent rule's dialled numbers.
func (c *Channel) routeFor(dialled string) (Number, bool) {
	if dialled == "" {
		return Number{}, false
	}
	v, err := dialled, error(nil)
	if _, configured := c.numbers[dialled]; !configured {
		// Trunks mostly dial a number as configured (in E.164), and
		// parsing a phone number costs more than all the other checks
		// of an INVITE.
		v, err = c.deps.Journey.Normalizer().Phone(dialled)
	}
	if err == nil {
		if n, ok := c.numbers[v]; ok {
			if n.Intent == "" && n.IVR == "" {
				if in, ok := c.deps.Journey.Recognize(journey.Incoming{Channel: "voice", Dialled: dialled}); ok && in.Source == "rule" {
					n.Intent = in.Name
				}
			}
			return n, true
		}
	}
	in, ok := c.deps.Journey.Recognize(journey.Incoming{Channel: "voice", Dialled: dialled})
	if !ok || in.Source != "rule" {
		return Number{}, false
	}
	return Number{Number: dialled, Queue: in.Queue, Intent: in.Name}, true
}

// trunkAllows checks that an INVITE comes from a configured trunk: by
// source address, and by digest credentials when the trunk has them.
// It returns false with a nil error when it has answered (a challenge).
func (c *Channel) trunkAllows(req *sip.Request, tx sip.ServerTransaction) (bool, error) {
	if _, _, err := net.SplitHostPort(req.Source()); err != nil {
		return false, err
	}
	var byAuth []trunk
	for _, t := range *c.trunks.Load() {
		if len(t.nets) == 0 {
			byAuth = append(byAuth, t)
		}
	}
	candidates := c.trunksAt(req)
	if len(candidates) == 0 {
		candidates = byAuth
	}
	if len(candidates) == 0 {
		return false, errors.New("no trunk")
	}
	if t := candidates[0]; t.User == "" {
		return true, nil
	}
	password := func(user string) (string, bool) {
		for _, t := range candidates {
			if t.User == user && t.User != "" {
				return t.Password, true
			}
		}
		return "", false
	}
	user, err := c.authenticate(req, tx, "Proxy-Authorization", password)
	if user == "" {
		if h := req.GetHeader("Proxy-Authorization"); h != nil {
			c.metrics.rejected.WithLabelValues("auth").Inc()
		}
		return false, err
	}
	return true, nil
}

// trunksAt are the trunks whose address lists hold a request's source.
func (c *Channel) trunksAt(req *sip.Request) []trunk {
	host, _, err := net.SplitHostPort(req.Source())
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	var out []trunk
	for _, t := range *c.trunks.Load() {
		for _, n := range t.nets {
			if n.Contains(ip) {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

func (c *Channel) dialogUAFor(req *sip.Request) *sipgo.DialogUA {
	client := c.client
	if !strings.EqualFold(req.Transport(), "udp") {
		client = c.tcpCl
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "dirigent", Host: c.host, Port: c.port}}
	if !strings.EqualFold(req.Transport(), "udp") {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", strings.ToLower(req.Transport()))
	}
	return &sipgo.DialogUA{Client: client, ContactHDR: contact, RewriteContact: true}
}

// run is the call after the caller's ACK: the IVR menu if the number has
// one, then the queue with hold audio.
func (cl *call) run() {
	c := cl.c
	if m := c.menus[cl.route.IVR]; m != nil {
		cl.mu.Lock()
		if cl.state != stateAnswering {
			cl.mu.Unlock()
			return
		}
		cl.state = stateMenu
		cl.mu.Unlock()
		queue, ok := cl.menu(m)
		if !ok {
			return // the caller hung up
		}
		cl.task.Queue, cl.contact.Queue = queue, queue
	}
	cl.mu.Lock()
	if cl.state >= stateTalking {
		cl.mu.Unlock()
		return
	}
	cl.state = stateWaiting
	snd := c.hold
	if s := c.queueHold[cl.task.Queue]; s != nil {
		snd = s
	}
	cl.player = &player{leg: cl.caller, snd: snd, loop: true, done: make(chan struct{})}
	c.pacer.add(cl.player)
	cl.mu.Unlock()
	if err := c.deps.Router.Enqueue(cl.task); err != nil {
		level := slog.LevelError
		if errors.Is(err, router.ErrErased) { // erased during the menu
			level = slog.LevelInfo
		}
		c.deps.Logger.Log(context.Background(), level, "queueing a call", "call", cl.task.ID, "queue", cl.task.Queue, "err", err)
		cl.hangup("queue")
	}
}

// menu plays the menu's prompt and waits for a key, until the timeout
// after the prompt; it returns the queue chosen, or false when the
// caller hung up.
func (cl *call) menu(m *Menu) (string, bool) {
	c := cl.c
	pl := &player{leg: cl.caller, snd: c.prompts[m.Name], done: make(chan struct{})}
	cl.caller.mu.Lock()
	cl.caller.onDigit = cl.digit
	cl.caller.mu.Unlock()
	cl.mu.Lock()
	cl.player = pl
	cl.mu.Unlock()
	c.pacer.add(pl)
	defer c.pacer.remove(pl)
	var timeout <-chan time.Time
	promptDone := pl.done
	for {
		select {
		case <-cl.done:
			return "", false
		case <-promptDone:
			promptDone = nil
			timeout = time.After(m.Timeout)
		case <-timeout:
			return m.Default, true
		case d := <-cl.digits:
			if q, ok := m.Digits[string(d)]; ok {
				return q, true
			}
			return m.Default, true
		}
	}
}

func (cl *call) digit(d byte) {
	select {
	case cl.digits <- d:
	default:
	}
}

// hangup ends the call from dirigent's side: BYE to both legs.
func (cl *call) hangup(why string) {
	outcome := outcomeCanceled
	if why == "queue" {
		outcome = outcomeFailed
	}
	cl.end(outcome, "dirigent")
}

// end ends the call because one side hung up (side "caller" or "agent")
// or dirigent did: the other legs get a BYE or CANCEL.
func (cl *call) end(waitOutcome, side string) {
	cl.mu.Lock()
	if cl.state == stateEnded {
		cl.mu.Unlock()
		return
	}
	talking := cl.state == stateTalking
	agentDlg := cl.agentDlg
	cl.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if side != "caller" {
		if err := cl.dialog.Bye(ctx); err != nil {
			cl.c.deps.Logger.Debug("BYE to the caller", "call", cl.task.ID, "err", err)
		}
	}
	if talking && side != "agent" && agentDlg != nil {
		if err := agentDlg.Bye(ctx); err != nil {
			cl.c.deps.Logger.Debug("BYE to the agent", "call", cl.task.ID, "err", err)
		}
	}
	outcome := waitOutcome
	if talking {
		outcome = outcomeAnswered
	}
	cl.finish(outcome, side)
}

// finish records the call's end: the contact's times and outcome, the
// router's task (ended into wrap-up, or canceled), and the metrics.
func (cl *call) finish(outcome, side string) {
	c := cl.c
	cl.mu.Lock()
	if cl.state == stateEnded {
		cl.mu.Unlock()
		return
	}
	prev := cl.state
	cl.state = stateEnded
	for _, stop := range cl.ringing {
		stop()
	}
	if cl.player != nil {
		c.pacer.remove(cl.player)
	}
	agentLeg, agentCall := cl.agentLeg, cl.agentCall
	answered, queue := cl.answered, cl.task.Queue
	if q := cl.movedTo.Load(); q != nil {
		queue = *q
	}
	close(cl.done)
	cl.mu.Unlock()

	cl.caller.close()
	if agentLeg != nil {
		agentLeg.close()
		c.deps.Logger.Debug("call media", "call", cl.task.ID,
			"from_caller", cl.caller.received.Load(), "to_agent", cl.caller.relayed.Load(),
			"from_agent", agentLeg.received.Load(), "to_caller", agentLeg.relayed.Load(), "hold_played", cl.caller.played.Load())
	}
	end := c.now()
	switch {
	case prev == stateTalking:
		if err := c.deps.Router.End(cl.task.ID); err != nil {
			c.deps.Logger.Warn("ending a call's task", "task", cl.task.ID, "err", err)
		}
	case prev == stateWaiting:
		reason := router.ReasonAbandoned
		if outcome != outcomeAbandoned {
			reason = router.ReasonSystem
		}
		if err := c.deps.Router.Cancel(cl.task.ID, reason); err != nil && !errors.Is(err, router.ErrUnknownTask) {
			c.deps.Logger.Warn("canceling a call's task", "task", cl.task.ID, "err", err)
		}
	}
	ct := *cl.contact
	ct.Answered = answered
	ct.End = end
	ct.Outcome = outcome
	ct.Agent = cl.agent
	ct.TaskID = cl.task.ID
	ct.Queue = queue
	if side != "" {
		ct.Note = "hung up by " + side
	}
	switch err := c.deps.Store.UpdateContact(context.Background(), &ct); {
	case errors.Is(err, store.ErrNotFound):
		// The customer was erased during the call: nothing of it is
		// written back.
		c.deps.Logger.Debug("call's end not recorded: its contact was erased", "call", cl.task.ID)
	case err != nil:
		c.deps.Logger.Error("recording a call's end", "call", cl.task.ID, "err", err)
	}
	c.mu.Lock()
	delete(c.byCallID, cl.callID)
	if agentCall != "" {
		delete(c.byCallID, agentCall)
	}
	delete(c.byTask, cl.task.ID)
	c.mu.Unlock()
	c.metrics.calls.WithLabelValues(outcome).Inc()
	c.metrics.activeCalls.Dec()
	c.active.Add(-1)
}

func (c *Channel) lookup(req *sip.Request) *call {
	id := req.CallID()
	if id == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byCallID[id.Value()]
}

func (c *Channel) onAck(req *sip.Request, tx sip.ServerTransaction) {
	cl := c.lookup(req)
	if cl == nil || cl.callID != req.CallID().Value() {
		return
	}
	cl.dialog.ReadAck(req, tx)
}

func (c *Channel) onBye(req *sip.Request, tx sip.ServerTransaction) {
	cl := c.lookup(req)
	if cl == nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	side := "caller"
	if req.CallID().Value() != cl.callID {
		side = "agent"
	}
	go cl.end(outcomeAbandoned, side)
}

// onInfo takes a key pressed at an IVR menu sent as SIP INFO.
func (c *Channel) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	cl := c.lookup(req)
	if cl == nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	d, ok := parseDTMFInfo(ct, req.Body())
	if !ok {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusUnsupportedMediaType, "Unsupported Media Type (application/dtmf-relay or application/dtmf)", nil))
		return
	}
	tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	if req.CallID().Value() == cl.callID {
		cl.digit(d)
	}
}

// reinvite answers a re-INVITE within a call (hold, resume, a session
// refresh, a new address): the peer's new media address is taken and
// dirigent's side stays as it was.
func (c *Channel) reinvite(req *sip.Request, tx sip.ServerTransaction) {
	cl := c.lookup(req)
	if cl == nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	leg := cl.caller
	if req.CallID().Value() != cl.callID {
		cl.mu.Lock()
		leg = cl.agentLeg
		cl.mu.Unlock()
	}
	if leg == nil {
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	leg.mu.Lock()
	pt, dtmf := leg.pt, leg.dtmf
	leg.mu.Unlock()
	if len(req.Body()) > 0 {
		offer, err := parseSDP(req.Body())
		if errors.Is(err, errNoCodec) {
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
			return
		}
		if err != nil {
			tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request ("+err.Error()+")", nil))
			return
		}
		if offer.addr != nil {
			leg.setRemote(offer.addr, pt, dtmf)
		}
		c.deps.Logger.Debug("re-INVITE", "call", cl.task.ID, "hold", offer.hold)
	}
	res := sip.NewSDPResponseFromRequest(req, buildSDP(c.mediaIP, leg.port(), []uint8{pt}, dtmf))
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "dirigent", Host: c.host, Port: c.port}})
	tx.Respond(res)
}

// String names the call in logs.
func (cl *call) String() string { return fmt.Sprintf("call %d", cl.task.ID) }
