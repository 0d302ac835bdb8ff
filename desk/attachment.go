package desk

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"
)

// getAttachment is GET /api/desk/contacts/{id}/attachments/{n}: file n
// (0 is the first) of the mail a contact came from, as the contact lists
// them, for the agent to save and open. It is always a download: a file
// from outside never runs on the desk's origin.
func (s *Server) getAttachment(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "contact")
	if !ok {
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("attachment %q: want 0 for the first, 1 for the second…", r.PathValue("n")))
		return
	}
	contact, err := s.deps.Store.Contact(id)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if contact.MailID == 0 || n >= len(contact.Attachments) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("contact %d has no attachment %d", id, n))
		return
	}
	if s.deps.Mailer == nil {
		writeError(w, http.StatusServiceUnavailable, "the mail channel is not running")
		return
	}
	a, data, err := s.deps.Mailer.Attachment(contact.MailID, n)
	if err != nil {
		writeStoreError(w, fmt.Errorf("contact %d: attachment %d: %w", id, n, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", downloadType(a.Type))
	name := a.Name
	if name == "" {
		name = fmt.Sprintf("attachment-%d-%d", id, n+1)
	}
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-store")
	w.Write(data)
}

// downloadType is the attachment's media type as the mail declared it,
// re-formatted, or application/octet-stream for one that does not parse.
func downloadType(declared string) string {
	mt, params, err := mime.ParseMediaType(declared)
	if err != nil {
		return "application/octet-stream"
	}
	if t := mime.FormatMediaType(mt, params); t != "" {
		return t
	}
	return "application/octet-stream"
}
