package desk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"dirigent/store"
)

// Limits of a posted touchpoint.
const (
	maxTouchpointBytes = 16 << 10
	maxTouchpointData  = 50
)

var touchpointType = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// touchpointRequest is the body of POST /api/touchpoints.
type touchpointRequest struct {
	Identity string            `json:"identity"` // "email:joe@example.com", "phone:030 123456"
	Type     string            `json:"type"`     // "order", "web-visit", "survey"
	At       *time.Time        `json:"at"`       // RFC 3339; default: now
	Data     map[string]string `json:"data"`
}

// decodeTouchpoint reads and checks a touchpoint, strictly: unknown
// fields, trailing data and oversized bodies are errors.
func decodeTouchpoint(body io.Reader) (touchpointRequest, error) {
	var req touchpointRequest
	data, err := io.ReadAll(io.LimitReader(body, maxTouchpointBytes+1))
	if err != nil {
		return req, err
	}
	if len(data) > maxTouchpointBytes {
		return req, fmt.Errorf("body larger than %d bytes", maxTouchpointBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("body is not a touchpoint: %v", err)
	}
	if dec.More() {
		return req, errors.New("body has data after the touchpoint")
	}
	switch {
	case req.Identity == "":
		return req, errors.New("identity is missing (e.g. \"email:joe@example.com\")")
	case !touchpointType.MatchString(req.Type):
		return req, fmt.Errorf("type %q: want lower-case letters, digits, '.', '-', '_' (e.g. \"order\")", req.Type)
	case len(req.Data) > maxTouchpointData:
		return req, fmt.Errorf("data has %d entries, at most %d", len(req.Data), maxTouchpointData)
	case req.Type == store.TouchpointIdentityAdded || req.Type == store.TouchpointIdentityRemoved:
		return req, fmt.Errorf("type %q is dirigent's own: what a person did to the customer's identities", req.Type)
	}
	return req, nil
}

// postTouchpoint records an event from another system in the journey of
// the customer it names, who is created when unknown.
func (s *Server) postTouchpoint(w http.ResponseWriter, r *http.Request) {
	req, err := decodeTouchpoint(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	id, err := s.deps.Journey.Normalizer().Parse(req.Identity)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	tp := &store.Touchpoint{Type: req.Type, At: time.Now().UTC(), Data: req.Data}
	if req.At != nil {
		tp.At = req.At.UTC()
	}
	// A second time when the customer was erased or merged into another
	// meanwhile: the identity now names a new customer or the kept one.
	for range 2 {
		var c *store.Customer
		if c, _, err = s.deps.Journey.Identify(r.Context(), id.Kind, id.Value, ""); err != nil {
			continue
		}
		tp.CustomerID = c.ID
		if err = s.deps.Store.AddTouchpoint(r.Context(), tp); !errors.Is(err, store.ErrNotFound) {
			break
		}
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]uint64{"id": tp.ID, "customer_id": tp.CustomerID})
}

// journeyPage is the answer of GET /api/customers/{id}/journey.
type journeyPage struct {
	Customer *store.Customer      `json:"customer"`
	Entries  []store.JourneyEntry `json:"entries"`
	Next     string               `json:"next,omitempty"` // the before= of the next page
}

// getJourney serves a customer's journey, newest first, paged by
// ?before=RFC3339 and ?limit= (1–200, default 50).
func (s *Server) getJourney(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "customer")
	if !ok {
		return
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			writeError(w, http.StatusBadRequest, "limit: want a number from 1 to 200")
			return
		}
		limit = n
	}
	var before time.Time
	if v := r.URL.Query().Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "before: want an RFC 3339 time such as 2026-11-22T09:00:00Z")
			return
		}
		before = t
	}
	c, err := s.deps.Store.Customer(id)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	entries, err := s.deps.Store.Journey(id, before, limit)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	page := journeyPage{Customer: c, Entries: entries}
	if len(entries) == limit {
		page.Next = entries[len(entries)-1].At().Format(time.RFC3339Nano)
	}
	writeJSON(w, http.StatusOK, page)
}

// importCustomers takes a CRM export (CSV) from another system, as
// `dirigent import customers` does over the control socket.
func (s *Server) importCustomers(w http.ResponseWriter, r *http.Request) {
	res, err := s.deps.Journey.ImportCustomers(r.Context(), r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.deps.Logger.Info("customers imported through the API", "rows", res.Rows, "created", res.Created, "updated", res.Updated, "problems", len(res.Problems))
	writeJSON(w, http.StatusOK, res)
}
