package desk

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"golang.org/x/text/language"
)

// web holds the desk's pages: plain HTML, CSS and JavaScript, no build
// step and nothing from the internet.
//
//go:embed web
var web embed.FS

// pageLanguages are the languages of the pages; the first is the
// fallback.
var pageLanguages = language.NewMatcher([]language.Tag{language.English, language.German})

// pageLanguage picks "de" or "en" from the Accept-Language header.
func pageLanguage(r *http.Request) string {
	tags, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	_, i, _ := pageLanguages.Match(tags...)
	if i == 1 {
		return "de"
	}
	return "en"
}

// routeDesk registers the desktop's pages and JSON API on mux.
func (s *Server) routeDesk(mux *http.ServeMux) {
	anyone := []string(nil)
	agent := []string{RoleAgent}
	staff := []string{RoleAgent, RoleSupervisor, RoleAdmin}
	board := []string{RoleSupervisor, RoleAdmin}
	admin := []string{RoleAdmin}
	api := "/api/desk"
	handle(mux, http.MethodPost, api+"/login", s.login)
	handle(mux, http.MethodPost, api+"/logout", s.logout)
	handle(mux, http.MethodGet, api+"/me", s.authed(anyone, s.getMe))
	handle(mux, http.MethodPut, api+"/me/presence", s.authed(agent, s.setMyPresence))
	handle(mux, http.MethodGet, api+"/events", s.authed(anyone, s.streamEvents))
	handle(mux, http.MethodGet, api+"/offers", s.authed(agent, s.getOffers))
	handle(mux, http.MethodPost, api+"/offers/{id}/accept", s.authed(agent, s.acceptOffer))
	handle(mux, http.MethodPost, api+"/offers/{id}/decline", s.authed(agent, s.declineOffer))
	handle(mux, http.MethodGet, api+"/tasks", s.authed(agent, s.getTasks))
	handle(mux, http.MethodGet, api+"/tasks/{id}", s.authed(agent, s.getTask))
	handle(mux, http.MethodPost, api+"/tasks/{id}/reply", s.authed(agent, s.reply))
	handle(mux, http.MethodPost, api+"/tasks/{id}/wrapup", s.authed(agent, s.wrapUp))
	handle(mux, http.MethodPost, api+"/tasks/{id}/chat", s.authed(agent, s.sendChat))
	handle(mux, http.MethodPut, api+"/tasks/{id}/chat/typing", s.authed(agent, s.chatTyping))
	handle(mux, http.MethodPost, api+"/tasks/{id}/chat/end", s.authed(agent, s.endChat))
	handle(mux, http.MethodGet, api+"/customers", s.authed(staff, s.searchCustomers))
	handle(mux, http.MethodGet, api+"/customers/{id}", s.authed(staff, s.getCustomer))
	handle(mux, http.MethodDelete, api+"/customers/{id}/identities/{identity}", s.authed(staff, s.unlinkCustomerIdentity))
	handle(mux, http.MethodGet, api+"/contacts/{id}/attachments/{n}", s.authed(staff, s.getAttachment))
	handle(mux, http.MethodPost, api+"/contacts/{id}/give-up", s.authed(staff, s.giveUp))
	handle(mux, http.MethodGet, api+"/wallboard", s.authed(board, s.getWallboard))
	handle(mux, http.MethodPost, api+"/wallboard/tasks/{id}/return", s.authed(board, s.returnTask))
	handle(mux, http.MethodGet, api+"/admin", s.authed(admin, s.getAdmin))
	handle(mux, http.MethodPut, api+"/admin/agents/{id}/skills", s.authed(admin, s.setAgentSkills))
	handle(mux, http.MethodPut, api+"/admin/agents/{id}/presence", s.authed(admin, s.setAgentPresence))
	mux.HandleFunc(api+"/", notFound)

	static, _ := fs.Sub(web, "web")
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /desk/{file}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("file") == "index.html" {
			notFound(w, r)
			return
		}
		pageHeaders(w)
		http.StripPrefix("/desk", files).ServeHTTP(w, r)
	})
	index, _ := fs.ReadFile(static, "index.html")
	page := func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Language", pageLanguage(r))
		// The page starts in the browser's language; the switch on the
		// page overrides it.
		w.Write(bytes.Replace(index, []byte(`<html lang="en">`), []byte(`<html lang="`+pageLanguage(r)+`">`), 1))
	}
	mux.HandleFunc("GET /{$}", page)
	// The link a ringing phone shows (sip.desk_url): the desk, opened on
	// that contact's task.
	mux.HandleFunc("GET /contacts/{id}", page)
	mux.HandleFunc("/", notFound)
}

// pageHeaders keep the pages to themselves: no framing by other sites,
// no scripts or styles but our own.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", strings.Join([]string{
		"default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
		"connect-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'",
	}, "; "))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-cache")
}
