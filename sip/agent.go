package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"dirigent/router"
	"dirigent/store"
)

// ringResult is how ringing one of the agent's phones ended.
type ringResult struct {
	dlg *sipgo.DialogClientSession
	err error
}

// ring rings every registered phone of the offered agent until the
// offer's deadline: the first to answer is bridged to the caller and the
// others are canceled; busy or refused (486, 603) or no answer is a
// decline to the router, which then offers the call to the next agent.
func (cl *call) ring(o router.Offer) {
	c := cl.c
	regs := c.registrar.contacts(o.Agent)
	if len(regs) == 0 {
		c.metrics.agentLegs.WithLabelValues("unreachable").Inc()
		c.deps.Logger.Info("agent has no registered phone", "agent", o.Agent, "call", cl.task.ID)
		c.deps.Router.Decline(o.TaskID, o.Agent)
		return
	}
	ctx, stop := context.WithDeadline(context.Background(), o.Deadline)
	defer stop()
	cl.mu.Lock()
	if cl.state != stateWaiting {
		cl.mu.Unlock()
		return
	}
	cl.ringing[ringKeyOf(o)] = stop
	cl.mu.Unlock()
	defer func() {
		cl.mu.Lock()
		delete(cl.ringing, ringKeyOf(o))
		cl.mu.Unlock()
	}()

	leg, err := c.newMediaLeg()
	if err != nil {
		c.deps.Logger.Error("no RTP port for an agent leg", "err", err)
		c.deps.Router.Decline(o.TaskID, o.Agent)
		return
	}
	cl.caller.mu.Lock()
	callerPT, callerDTMF := cl.caller.pt, cl.caller.dtmf
	cl.caller.mu.Unlock()
	codecs := []uint8{callerPT, ptPCMA}
	if callerPT == ptPCMA {
		codecs[1] = ptPCMU
	}
	var dtmf uint8
	if callerDTMF != 0 {
		dtmf = ptDTMF
	}
	offer := buildSDP(c.mediaIP, leg.port(), codecs, dtmf)

	results := make(chan ringResult, len(regs))
	forks := make([]context.CancelFunc, len(regs))
	for i, g := range regs {
		fctx, fstop := context.WithCancel(ctx)
		forks[i] = fstop
		go func() { results <- cl.invite(fctx, g, offer, o) }()
	}
	var won *sipgo.DialogClientSession
	var declined bool
	for range regs {
		r := <-results
		switch {
		case r.err == nil && won == nil:
			won = r.dlg
			for _, f := range forks {
				f() // cancel the other phones
			}
		case r.err == nil:
			// A second phone answered at the same moment: hang it up.
			r.dlg.Ack(context.Background())
			go r.dlg.Bye(context.Background())
		default:
			var dr *sipgo.ErrDialogResponse
			if errors.As(r.err, &dr) {
				declined = true
			}
		}
	}
	for _, f := range forks {
		f()
	}
	if won == nil {
		leg.close()
		cl.mu.Lock()
		gone := cl.state != stateWaiting
		cl.mu.Unlock()
		switch {
		case gone:
			// The caller hung up while the phones rang.
		case ctx.Err() == context.Canceled:
			c.metrics.agentLegs.WithLabelValues("revoked").Inc()
		case declined:
			c.metrics.agentLegs.WithLabelValues("declined").Inc()
			c.deps.Router.Decline(o.TaskID, o.Agent)
		default:
			c.metrics.agentLegs.WithLabelValues("timeout").Inc()
			// The router's own offer timer may have ended the offer
			// already; then this decline is refused, which is fine.
			c.deps.Router.Decline(o.TaskID, o.Agent)
		}
		return
	}
	cl.answer(o, won, leg)
}

// invite sends one INVITE to one registered phone and waits for its
// final answer.
func (cl *call) invite(ctx context.Context, g store.SIPRegistration, offer []byte, o router.Offer) ringResult {
	c := cl.c
	var uri sip.Uri
	if err := sip.ParseUri(g.Contact, &uri); err != nil {
		return ringResult{err: fmt.Errorf("registered contact %q: %w", g.Contact, err)}
	}
	req := sip.NewRequest(sip.INVITE, uri)
	req.SetBody(offer)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	from := &sip.FromHeader{DisplayName: cl.name, Address: sip.Uri{Scheme: "sip", User: cl.number, Host: c.host}}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: uri.User, Host: uri.Host, Port: uri.Port}})
	pai := "<sip:" + cl.number + "@" + c.host + ">"
	if cl.name != "" {
		pai = `"` + cl.name + `" ` + pai
	}
	req.AppendHeader(sip.NewHeader("P-Asserted-Identity", pai))
	if c.cfg.DeskURL != "" {
		req.AppendHeader(sip.NewHeader("Call-Info", fmt.Sprintf("<%s/contacts/%d>;purpose=info", strings.TrimRight(c.cfg.DeskURL, "/"), cl.task.ID)))
	}
	transport := strings.ToLower(g.Transport)
	if transport == "" {
		transport = "udp"
	}
	req.SetTransport(strings.ToUpper(transport))
	if dest := destination(uri, g.Source, transport); dest != "" {
		req.SetDestination(dest)
	}
	client := c.client
	if transport != "udp" {
		client = c.tcpCl
	}
	ua := &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "dirigent", Host: c.host, Port: c.port}}, RewriteContact: true}
	dlg, err := ua.WriteInvite(ctx, req)
	if err != nil {
		return ringResult{err: err}
	}
	cl.mu.Lock()
	agentCall := req.CallID().Value()
	cl.mu.Unlock()
	c.mu.Lock()
	c.byCallID[agentCall] = cl
	c.mu.Unlock()
	err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{})
	if err != nil {
		c.mu.Lock()
		if c.byCallID[agentCall] == cl {
			delete(c.byCallID, agentCall)
		}
		c.mu.Unlock()
		return ringResult{err: err}
	}
	return ringResult{dlg: dlg}
}

// answer bridges the caller with the agent whose phone answered.
func (cl *call) answer(o router.Offer, dlg *sipgo.DialogClientSession, leg *mediaLeg) {
	c := cl.c
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	ack := func() {
		if err := dlg.Ack(ctx); err != nil {
			c.deps.Logger.Warn("ACK to the agent's phone", "agent", o.Agent, "err", err)
		}
	}
	agentCall := dlg.InviteRequest.CallID().Value()
	hangUpAgent := func() {
		ack()
		leg.close()
		dlg.Bye(ctx)
		c.mu.Lock()
		delete(c.byCallID, agentCall)
		c.mu.Unlock()
	}
	ans, err := parseSDP(dlg.InviteResponse.Body())
	if err != nil || !contains(ans.codecs, ptPCMU, ptPCMA) {
		c.deps.Logger.Warn("agent's phone answered with unusable SDP", "agent", o.Agent, "err", err)
		hangUpAgent()
		c.metrics.agentLegs.WithLabelValues("declined").Inc()
		c.deps.Router.Decline(o.TaskID, o.Agent)
		return
	}
	dtmf := ans.dtmf
	leg.setRemote(ans.addr, ans.codecs[0], dtmf)
	c.deps.Logger.Debug("agent answered", "agent", o.Agent, "rtp", ans.addr, "codec", ans.codecs[0])

	cl.mu.Lock()
	if cl.state != stateWaiting {
		cl.mu.Unlock()
		hangUpAgent() // the caller hung up as the agent answered
		return
	}
	if err := c.deps.Router.Accept(o.TaskID, o.Agent); err != nil {
		cl.mu.Unlock()
		c.deps.Logger.Info("agent answered an offer that had ended", "agent", o.Agent, "task", o.TaskID, "err", err)
		hangUpAgent()
		return
	}
	cl.state = stateTalking
	cl.agent, cl.agentDlg, cl.agentLeg, cl.agentCall = o.Agent, dlg, leg, agentCall
	cl.answered = c.now()
	if cl.player != nil {
		c.pacer.remove(cl.player)
		cl.player = nil
	}
	cl.mu.Unlock()
	cl.caller.mu.Lock()
	cl.caller.onDigit = nil
	cl.caller.mu.Unlock()
	bridge(cl.caller, leg)
	// Only now: the phone may send a re-INVITE or BYE as soon as it has
	// the ACK, and the call must know its agent leg by then.
	ack()
	c.metrics.agentLegs.WithLabelValues("answered").Inc()
}

func contains(s []uint8, v ...uint8) bool {
	for _, x := range s {
		for _, y := range v {
			if x == y {
				return true
			}
		}
	}
	return false
}

// ringKey tells one offer's ringing from another's: an agent may be
// offered the same call again, and a late revoke of the first offer must
// not stop the second.
type ringKey struct {
	agent    string
	deadline int64 // the offer's, in Unix nanoseconds
}

func ringKeyOf(o router.Offer) ringKey { return ringKey{o.Agent, o.Deadline.UnixNano()} }

// revoke stops ringing the agent of an offer that ended unanswered.
func (cl *call) revoke(o router.Offer) {
	cl.mu.Lock()
	stop := cl.ringing[ringKeyOf(o)]
	cl.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// destination is where to send requests for a registered contact. Over
// TCP or TLS it is the connection the REGISTER came on (its source): a
// phone need not accept connections, and one over TLS has no certificate
// to accept them with. Over UDP it is the address the REGISTER came from
// when the Contact names another IP (the phone is behind NAT and
// announced its private address), else the Contact's own address.
func destination(contact sip.Uri, source, transport string) string {
	if transport != "udp" {
		return source
	}
	host, _, err := net.SplitHostPort(source)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(contact.Host); ip != nil && ip.Equal(net.ParseIP(host)) {
		return ""
	}
	return source
}
