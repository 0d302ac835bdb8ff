package desk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

// Limits of what the desk's pages post.
const (
	maxDeskBody  = 256 << 10
	maxReplyText = 100 << 10
	maxNoteRunes = 4000
	// A reply's files; the mail channel also holds the whole reply to
	// what the smarthost takes.
	maxReplyFiles     = 10
	maxReplyFileBytes = 10 << 20 // all of them, decoded
)

// decodeBody reads a JSON request body into v, strictly: unknown fields,
// trailing data and oversized bodies are errors that name the problem.
func decodeBody(body io.Reader, v any) error {
	return decodeBodyUpTo(body, v, maxDeskBody)
}

// bodyTooLarge is a request body beyond its limit, in bytes.
type bodyTooLarge int

func (b bodyTooLarge) Error() string { return fmt.Sprintf("body larger than %d bytes", int(b)) }

// decodeBodyUpTo is decodeBody for a body of up to limit bytes.
func decodeBodyUpTo(body io.Reader, v any, limit int) error {
	data, err := io.ReadAll(io.LimitReader(body, int64(limit)+1))
	if err != nil {
		return err
	}
	if len(data) > limit {
		return bodyTooLarge(limit)
	}
	if !utf8.Valid(data) {
		return errors.New("body is not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body is not valid JSON for this request: %v", err)
	}
	if dec.More() {
		return errors.New("body has data after the JSON object")
	}
	return nil
}

type presenceRequest struct {
	Presence string `json:"presence"` // available, away, offline
	Reason   string `json:"reason"`   // one of desk.away_reasons, when away
}

// parsePresence checks a presence change against the configured reasons.
func (s *Server) parsePresence(req presenceRequest) (router.Presence, error) {
	var p router.Presence
	if err := p.UnmarshalText([]byte(req.Presence)); err != nil {
		return p, fmt.Errorf("presence %q: want available, away or offline", req.Presence)
	}
	if p == router.Away && !slices.Contains(s.deps.AwayReasons, req.Reason) {
		return p, fmt.Errorf("away needs a reason, one of: %s", strings.Join(s.deps.AwayReasons, ", "))
	}
	if p != router.Away && req.Reason != "" {
		return p, fmt.Errorf("a reason goes only with away")
	}
	return p, nil
}

// setMyPresence is PUT /api/desk/me/presence.
func (s *Server) setMyPresence(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	var req presenceRequest
	if err := decodeBody(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, err := s.parsePresence(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.deps.Router.SetPresence(sess.user, p, req.Reason); err != nil {
		writeRouterError(w, err)
		return
	}
	s.publishWallboard()
	writeJSON(w, http.StatusOK, s.me(sess))
}

// writeRouterError: an unknown task or agent is 404, a task in the wrong
// state (an offer that just timed out) 409.
func writeRouterError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, router.ErrUnknownTask), errors.Is(err, router.ErrUnknownAgent):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, router.ErrWrongState):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func (s *Server) getOffers(w http.ResponseWriter, r *http.Request) {
	out := []deskTask{}
	for _, t := range s.desk.agentTasks(sessionOf(r).user) {
		if t.State == "offered" {
			out = append(out, t)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"offers": out})
}

func (s *Server) getTasks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"tasks": s.desk.agentTasks(sessionOf(r).user)})
}

// myTask finds task id of the session's agent in state ("" for any),
// answering 404 or 409 when it is not there.
func (s *Server) myTask(w http.ResponseWriter, r *http.Request, state string) (deskTask, bool) {
	id, ok := pathID(w, r, "task")
	if !ok {
		return deskTask{}, false
	}
	t, ok := s.desk.task(sessionOf(r).user, id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("task %d: %v", id, errNotYours))
		return t, false
	}
	if state != "" && t.State != state {
		writeError(w, http.StatusConflict, fmt.Sprintf("task %d is %s, not %s", id, t.State, state))
		return t, false
	}
	return t, true
}

// notByDesk refuses to accept or decline a call on the desk: the phone
// rings until it is answered or refused there, and the voice channel
// tells the router; a desk answer would leave it ringing.
func notByDesk(w http.ResponseWriter, t deskTask) bool {
	if t.Channel != router.Voice {
		return false
	}
	writeError(w, http.StatusConflict, fmt.Sprintf("task %d is a call: answer or refuse it on your phone", t.ID))
	return true
}

// acceptOffer is POST /api/desk/offers/{id}/accept.
func (s *Server) acceptOffer(w http.ResponseWriter, r *http.Request) {
	t, ok := s.myTask(w, r, "offered")
	if !ok || notByDesk(w, t) {
		return
	}
	if err := s.deps.Router.Accept(t.ID, t.Agent); err != nil {
		s.desk.mu.Lock()
		s.desk.dropOffer(t.Agent, t.ID)
		s.desk.mu.Unlock()
		writeRouterError(w, err)
		return
	}
	s.desk.mu.Lock()
	s.desk.dropOffer(t.Agent, t.ID)
	// RouterEvent put it on the desk as Accept assigned it; gone again, it
	// ended at once (its customer was erased) and is not to be shown.
	cur, ok := s.desk.tasks[t.ID]
	if ok {
		t = *cur
	}
	s.desk.mu.Unlock()
	if !ok {
		writeError(w, http.StatusConflict, fmt.Sprintf("task %d ended as it was accepted", t.ID))
		return
	}
	s.metrics.offers.WithLabelValues("accepted").Inc()
	s.events.publish(toUser(t.Agent), "tasks", map[string]uint64{"id": t.ID})
	s.publishWallboard()
	writeJSON(w, http.StatusOK, t)
}

// declineOffer is POST /api/desk/offers/{id}/decline.
func (s *Server) declineOffer(w http.ResponseWriter, r *http.Request) {
	t, ok := s.myTask(w, r, "offered")
	if !ok || notByDesk(w, t) {
		return
	}
	err := s.deps.Router.Decline(t.ID, t.Agent)
	s.desk.mu.Lock()
	s.desk.dropOffer(t.Agent, t.ID)
	s.desk.mu.Unlock()
	if err != nil {
		writeRouterError(w, err)
		return
	}
	s.metrics.offers.WithLabelValues("declined").Inc()
	s.events.publish(toUser(t.Agent), "tasks", map[string]uint64{"id": t.ID})
	writeJSON(w, http.StatusOK, map[string]any{"id": t.ID, "state": "declined"})
}

// customerCard is a customer with their identities.
type customerCard struct {
	*store.Customer
	Identities []string `json:"identities"`
}

func (s *Server) card(id uint64) (*customerCard, error) {
	c, err := s.deps.Store.Customer(id)
	if err != nil {
		return nil, err
	}
	ids, err := s.deps.Store.Identities(id)
	if err != nil {
		return nil, err
	}
	if ids == nil {
		ids = []string{}
	}
	return &customerCard{Customer: c, Identities: ids}, nil
}

// taskDetail is everything the agent's screen shows for a task.
type taskDetail struct {
	Task     deskTask       `json:"task"`
	Contact  *store.Contact `json:"contact,omitempty"`
	Customer *customerCard  `json:"customer,omitempty"`
	// RepeatOf is the unresolved earlier contact this one repeats: the
	// banner that says what happened before.
	RepeatOf        *store.Contact       `json:"repeat_of,omitempty"`
	LastAgent       string               `json:"last_agent,omitempty"`
	Journey         []store.JourneyEntry `json:"journey"` // newest first, all channels
	NextBestActions []journey.Action     `json:"next_best_actions"`
	Conversation    *store.Conversation  `json:"conversation,omitempty"`
	Thread          []*store.Contact     `json:"thread,omitempty"` // the conversation's mails, oldest first
	// Deliveries say how the thread's replies stand with the smarthost,
	// by contact id: one not sent yet shows its last error.
	Deliveries map[uint64]delivery `json:"deliveries,omitempty"`
	Chat       []store.ChatMessage `json:"chat,omitempty"` // a chat's messages so far
}

// delivery is how a reply stands in the outbox.
type delivery struct {
	To          string    `json:"to"` // the address it goes to
	Sent        time.Time `json:"sent,omitzero"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"` // while tried
	GaveUp      time.Time `json:"gave_up,omitzero"`
	GaveUpBy    string    `json:"gave_up_by,omitempty"`
	// Bounced: it did not reach the customer, and will not (a delivery
	// report came back, the smarthost refused it for good, or it was not
	// sent in its queue time).
	Bounced      time.Time `json:"bounced,omitzero"`
	BounceReason string    `json:"bounce_reason,omitempty"`
}

func deliveryOf(m *store.OutboundMail) delivery {
	dl := delivery{To: m.To, Sent: m.Sent, Attempts: m.Attempts, LastError: m.LastError, GaveUp: m.GaveUp, GaveUpBy: m.GaveUpBy, Bounced: m.Bounced, BounceReason: m.BounceReason}
	if m.Sent.IsZero() && m.GaveUp.IsZero() && m.Bounced.IsZero() {
		dl.NextAttempt = m.NextAttempt
	}
	return dl
}

// maxThread bounds the mails of a conversation's thread shown, the
// newest.
const maxThread = 200

// getTask is GET /api/desk/tasks/{id}: shown as soon as a task is
// offered, so the customer card is on screen while the phone rings.
func (s *Server) getTask(w http.ResponseWriter, r *http.Request) {
	t, ok := s.myTask(w, r, "")
	if !ok {
		return
	}
	d := taskDetail{Task: t, Journey: []store.JourneyEntry{}, NextBestActions: []journey.Action{}}
	contact, err := s.deps.Store.Contact(t.ID)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusOK, d) // a channel that keeps no contact for the task
		return
	}
	if err != nil {
		writeStoreError(w, err)
		return
	}
	d.Contact = contact
	if d.Customer, err = s.card(contact.CustomerID); err != nil {
		writeStoreError(w, err)
		return
	}
	jc, err := s.deps.Journey.ContextFor(contact.CustomerID, contact.Start)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	d.RepeatOf, d.LastAgent, d.Journey = jc.RepeatOf, jc.LastAgent, jc.Recent
	if acts := s.deps.Journey.NextBestActions(jc, contact.Channel, contact.Intent); acts != nil {
		d.NextBestActions = acts
	}
	if contact.Channel == "message" && contact.ConversationID != 0 && s.deps.Chats != nil {
		if d.Chat, err = s.deps.Chats.Transcript(contact.ConversationID); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	if contact.ConversationID != 0 {
		if d.Conversation, err = s.deps.Store.Conversation(contact.ConversationID); err != nil {
			writeStoreError(w, err)
			return
		}
		var sent map[uint64]*store.OutboundMail
		if d.Thread, sent, err = s.deps.Store.Thread(contact.CustomerID, d.Conversation, true, maxThread); err != nil {
			writeStoreError(w, err)
			return
		}
		slices.Reverse(d.Thread)
		for _, c := range d.Thread {
			if m := sent[c.OutboundID]; m != nil {
				if d.Deliveries == nil {
					d.Deliveries = map[uint64]delivery{}
				}
				d.Deliveries[c.ID] = deliveryOf(m)
			}
		}
	}
	writeJSON(w, http.StatusOK, d)
}

type replyRequest struct {
	Text  string      `json:"text"`
	Files []replyFile `json:"files"`
	// To is another address than the customer's mail names (one a
	// bounce made them give by phone); it becomes the customer's once
	// their answer from it threads back.
	To string `json:"to"`
}

// replyFile is a file the agent attaches to a reply.
type replyFile struct {
	Name string `json:"name"`
	Type string `json:"type"` // as the browser knows it; the mail channel decides what it goes as
	Data []byte `json:"data"` // base64 in JSON
}

// hidden are characters a file name must not have: control characters,
// and format characters (the right-to-left override turns "gpj.exe"
// around). "=?" is refused too: a mail program would decode the name as
// an encoded word, and the customer see another name than the agent.
func hidden(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }

// files checks the request's files and gives them as the mail channel
// takes them.
func (req replyRequest) files() ([]store.File, error) {
	if len(req.Files) > maxReplyFiles {
		return nil, fmt.Errorf("%d files: at most %d", len(req.Files), maxReplyFiles)
	}
	var out []store.File
	total := 0
	for i, f := range req.Files {
		name := strings.TrimSpace(f.Name)
		if name == "" || utf8.RuneCountInString(name) > 255 || strings.Contains(name, "=?") || strings.ContainsFunc(name, hidden) {
			return nil, fmt.Errorf("files[%d].name: want a file name of 1 to 255 characters, without control or direction characters or \"=?\"", i)
		}
		if total += len(f.Data); total > maxReplyFileBytes {
			return nil, fmt.Errorf("files larger than %d bytes together", maxReplyFileBytes)
		}
		out = append(out, store.File{Name: name, Type: f.Type, Data: f.Data})
	}
	return out, nil
}

// reply is POST /api/desk/tasks/{id}/reply: the answer goes out through
// the mail channel's outbox, threaded into the task's conversation.
func (s *Server) reply(w http.ResponseWriter, r *http.Request) {
	t, ok := s.myTask(w, r, "assigned")
	if !ok {
		return
	}
	// A task that is no mail is refused before a body of megabytes is read.
	contact, err := s.deps.Store.Contact(t.ID)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if contact.Channel != "email" || contact.ConversationID == 0 {
		writeError(w, http.StatusConflict, fmt.Sprintf("task %d is a %s contact, not a mail conversation", t.ID, contact.Channel))
		return
	}
	if r.ContentLength < 0 || r.ContentLength > maxDeskBody { // files come with it
		release, ok := s.uploadTurn(w, r)
		if !ok {
			return
		}
		defer release()
	}
	var req replyRequest
	// Base64 makes four bytes of three, and the text comes with them.
	err = decodeBodyUpTo(r.Body, &req, maxDeskBody+maxReplyFileBytes/3*4+maxReplyFiles*1024)
	if errors.As(err, new(bodyTooLarge)) {
		err = fmt.Errorf("the reply is larger than the desk takes: files up to %d bytes together", maxReplyFileBytes)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	files, err := req.files()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	text := strings.TrimSpace(req.Text)
	switch {
	case text == "":
		writeError(w, http.StatusBadRequest, "text is empty")
		return
	case len(text) > maxReplyText:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("text longer than %d bytes", maxReplyText))
		return
	}
	if s.deps.Mailer == nil {
		writeError(w, http.StatusServiceUnavailable, "the mail channel is not running")
		return
	}
	out, err := s.deps.Mailer.Reply(r.Context(), contact.ConversationID, t.Agent, strings.TrimSpace(req.To), text, files...)
	if errors.Is(err, journey.ErrBadIdentity) {
		writeError(w, http.StatusBadRequest, "to: "+err.Error())
		return
	}
	if err != nil {
		writeStoreError(w, err)
		return
	}
	s.metrics.replies.Inc()
	s.deps.Logger.Info("reply queued", "task", t.ID, "agent", t.Agent, "outbound", out.ID)
	writeJSON(w, http.StatusAccepted, map[string]any{"id": out.ID, "to": out.To, "message_id": out.MessageID, "contact_id": out.ContactID})
}

// maxUploads bounds the replies with files taken in at once: for a
// moment, one needs some sixteen times its files' size in memory (the
// JSON, its base64 decoded, the composed message, the store's copy), and
// a handful of agents sending 10 MiB each must not exhaust a small
// server. More wait their turn.
const maxUploads = 2

// uploadTurn waits for a place to take in a reply with files, up to
// s.uploadWait; then 503, to be sent again. release gives the place back.
func (s *Server) uploadTurn(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	t := time.NewTimer(s.uploadWait)
	defer t.Stop()
	select {
	case s.uploads <- struct{}{}:
		return func() { <-s.uploads }, true
	case <-t.C:
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusServiceUnavailable, "other replies with files are being taken in: send again in a moment")
	case <-r.Context().Done():
	}
	return nil, false
}

type wrapUpRequest struct {
	Code string `json:"code"`
	Note string `json:"note"`
}

// wrapUp is POST /api/desk/tasks/{id}/wrapup: the code becomes the
// contact's outcome, and the task is complete.
func (s *Server) wrapUp(w http.ResponseWriter, r *http.Request) {
	t, ok := s.myTask(w, r, "")
	if !ok {
		return
	}
	if t.State == "offered" {
		writeError(w, http.StatusConflict, fmt.Sprintf("task %d is offered, not assigned", t.ID))
		return
	}
	var req wrapUpRequest
	if err := decodeBody(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !slices.Contains(s.deps.WrapCodes, req.Code) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("code %q: want one of %s", req.Code, strings.Join(s.deps.WrapCodes, ", ")))
		return
	}
	note := strings.TrimSpace(req.Note)
	if utf8.RuneCountInString(note) > maxNoteRunes {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("note longer than %d characters", maxNoteRunes))
		return
	}
	contact, err := s.deps.Store.Contact(t.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		writeStoreError(w, err)
		return
	}
	// The router first: a task returned to its queue since the desk
	// looked it up is no longer this agent's, and gets no outcome from
	// them. Unknown: the router finished it already (the wrap-up time
	// passed, a restart); the outcome is recorded all the same, that is
	// what wrap-up is for, and so it is when a retry follows a failed
	// write below. A crash between the two loses the outcome (the task
	// is done in the router's journal), but the agent was not told it
	// was recorded: the answer comes after the write.
	if err := s.deps.Router.Complete(t.ID, t.Agent); err != nil && !errors.Is(err, router.ErrUnknownTask) {
		writeRouterError(w, err)
		return
	}
	if contact != nil {
		contact.Outcome, contact.WrapCode, contact.Agent = req.Code, req.Code, t.Agent
		// What the channel recorded (a call's answer and end, who hung
		// up) stays; the agent's note comes after it.
		switch {
		case contact.Note == "":
			contact.Note = note
		case note != "":
			contact.Note += "; " + note
		}
		if contact.Answered.IsZero() {
			contact.Answered = t.Accepted
		}
		if contact.End.IsZero() {
			contact.End = s.now()
		}
		if err := s.deps.Store.UpdateContact(r.Context(), contact); err != nil {
			writeStoreError(w, err)
			return
		}
	}
	s.desk.mu.Lock()
	if dt, ok := s.desk.tasks[t.ID]; ok && dt.Agent == t.Agent { // not given back and taken by another meanwhile
		delete(s.desk.tasks, t.ID)
	}
	s.desk.mu.Unlock()
	s.metrics.wrapUps.WithLabelValues(req.Code).Inc()
	s.events.publish(toUser(t.Agent), "tasks", map[string]uint64{"id": t.ID})
	s.publishWallboard()
	writeJSON(w, http.StatusOK, map[string]any{"id": t.ID, "outcome": req.Code})
}

// giveUp is POST /api/desk/contacts/{id}/give-up: the tries to send a
// reply the smarthost keeps refusing stop (a wrong address); its message
// with its files goes, who gave it up stays. 409 once it was sent.
func (s *Server) giveUp(w http.ResponseWriter, r *http.Request) {
	contact, ok := s.pathContact(w, r)
	if !ok {
		return
	}
	id := contact.ID
	if contact.OutboundID == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("contact %d is not a reply in the outbox", id))
		return
	}
	by := sessionOf(r).user
	m, err := s.deps.Store.GiveUpOutbound(r.Context(), contact.OutboundID, s.now(), by)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	s.deps.Logger.Info("reply given up", "contact", id, "outbound", m.ID, "to", m.To, "by", by)
	s.DeliveryChanged(contact.ConversationID) // for others holding the conversation
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "delivery": deliveryOf(m)})
}

// maxSearchResults bounds a customer search's answer.
const maxSearchResults = 20

// searchCustomers is GET /api/desk/customers?q=: "#12" is a customer id,
// an e-mail address or phone number finds by identity, a CRM id finds
// its customer, anything else searches names by word beginnings.
func (s *Server) searchCustomers(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if n := utf8.RuneCountInString(q); n < 2 || n > 100 {
		writeError(w, http.StatusBadRequest, "q: 2 to 100 characters")
		return
	}
	found := []*customerCard{}
	seen := map[uint64]bool{}
	add := func(id uint64) {
		if seen[id] {
			return
		}
		if c, err := s.card(id); err == nil {
			seen[id] = true
			found = append(found, c)
		}
	}
	if n, ok := strings.CutPrefix(q, "#"); ok {
		if id, err := strconv.ParseUint(n, 10, 64); err == nil {
			add(id)
		}
	}
	norm := s.deps.Journey.Normalizer()
	for _, kind := range []string{journey.KindEmail, journey.KindPhone} {
		if id, err := norm.Normalize(kind, q); err == nil {
			if cid, err := s.deps.Store.LookupIdentity(id.String()); err == nil {
				add(cid)
			}
		}
	}
	if c, err := s.deps.Store.CustomerByCRMID(q); err == nil {
		add(c.ID)
	}
	byName, err := s.deps.Store.SearchCustomersByName(q, maxSearchResults)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	for _, c := range byName {
		if len(found) >= maxSearchResults {
			break
		}
		add(c.ID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"customers": found})
}

// unlinkCustomerIdentity is DELETE
// /api/desk/customers/{id}/identities/{identity}: the agent who sees a
// stranger's mail or call filed under the customer of a task they have
// taken (a mistyped address an answer came from, a wrong number
// imported), or a supervisor or admin for any customer, takes that
// identity from the customer, at once; those filed stay, later ones are
// someone else's. Not a customer's only identity: that is an admin's
// decision (dirigent customer unlink).
func (s *Server) unlinkCustomerIdentity(w http.ResponseWriter, r *http.Request) {
	id, identity, ok := identityInPath(w, r, s.deps.Journey)
	if !ok {
		return
	}
	sess := sessionOf(r)
	if !sess.has(RoleSupervisor, RoleAdmin) && !s.holdsCustomer(sess.user, id) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("customer %d is not of a task you have taken", id))
		return
	}
	ch := store.IdentityChange{Identity: identity, CustomerID: id, By: sess.user, At: s.deps.Now()}
	switch err := s.deps.Store.UnlinkIdentity(r.Context(), ch, true); {
	case errors.Is(err, store.ErrLastIdentity):
		writeError(w, http.StatusConflict, fmt.Sprintf("%s is customer %d's only identity: an admin takes it (dirigent customer unlink)", identity, id))
	case err != nil:
		writeStoreError(w, err)
	default:
		s.deps.Logger.Info("identity unlinked on the desk", "customer", id, "identity", identity, "by", sess.user)
		writeJSON(w, http.StatusOK, map[string]any{"customer": id, "identity": identity})
	}
}

// holdsCustomer reports whether agent has taken a task of the customer.
func (s *Server) holdsCustomer(agent string, customerID uint64) bool {
	for _, t := range s.desk.agentTasks(agent) {
		if t.State == "offered" {
			continue
		}
		if c, err := s.deps.Store.Contact(t.ID); err == nil && c.CustomerID == customerID {
			return true
		}
	}
	return false
}

// identityInPath is the customer {id} and the identity {identity} of a
// request's path, the identity as typed and normalised; it answers 400
// for either that is none.
func identityInPath(w http.ResponseWriter, r *http.Request, j *journey.Journey) (uint64, string, bool) {
	id, ok := pathID(w, r, "customer")
	if !ok {
		return 0, "", false
	}
	identity, err := j.Normalizer().Parse(r.PathValue("identity"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return 0, "", false
	}
	return id, identity.String(), true
}

// getCustomer is GET /api/desk/customers/{id}: card and journey.
func (s *Server) getCustomer(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "customer")
	if !ok {
		return
	}
	c, err := s.card(id)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	entries, err := s.deps.Store.Journey(id, time.Time{}, 50)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if entries == nil {
		entries = []store.JourneyEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"customer": c, "journey": entries})
}
