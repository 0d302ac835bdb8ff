package desk

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"dirigent/store"
)

// pathContact is the contact the path's {id} names: 400 or 404 when
// there is none.
func (s *Server) pathContact(w http.ResponseWriter, r *http.Request) (*store.Contact, bool) {
	id, ok := pathID(w, r, "contact")
	if !ok {
		return nil, false
	}
	contact, err := s.deps.Store.Contact(id)
	if err != nil {
		writeStoreError(w, err)
		return nil, false
	}
	return contact, true
}

// getAttachment is GET /api/desk/contacts/{id}/attachments/{n}: file n
// (0 is the first) of the mail a contact came from or a reply went out
// as, as the contact lists them, for the agent to save and open. It is
// always a download of untyped bytes: a file from outside never runs on
// the desk's origin, not even as a script or style sheet a page there
// might load.
func (s *Server) getAttachment(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("attachment %q: want 0 for the first, 1 for the second…", r.PathValue("n")))
		return
	}
	contact, ok := s.pathContact(w, r)
	if !ok {
		return
	}
	id := contact.ID
	if n >= len(contact.Attachments) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("contact %d has no attachment %d", id, n))
		return
	}
	if s.deps.Mailer == nil {
		writeError(w, http.StatusServiceUnavailable, "the mail channel is not running")
		return
	}
	listed := contact.Attachments[n]
	started := false
	_, err = s.deps.Mailer.WriteAttachment(contact, n, func(a store.Attachment) (io.Writer, error) {
		// Found by its number: it must be the file the agent clicked.
		if a.Name != listed.Name || a.Type != listed.Type {
			return nil, fmt.Errorf("contact %d lists attachment %d as %q (%s), its mail has %q (%s) there", id, n, listed.Name, listed.Type, a.Name, a.Type)
		}
		name := a.Name
		if name == "" {
			name = fmt.Sprintf("attachment-%d-%d", id, n+1)
		}
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
		h.Set("Content-Length", strconv.FormatInt(listed.Size, 10))
		h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "private, no-store")
		started = true
		return w, nil
	})
	switch {
	case err != nil && started:
		s.deps.Logger.Warn("attachment download broken off", "contact", id, "attachment", n, "err", err)
	case err != nil:
		writeStoreError(w, fmt.Errorf("contact %d: attachment %d: %w", id, n, err))
	}
}
