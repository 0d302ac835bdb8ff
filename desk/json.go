package desk

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"dirigent/store"
)

// writeJSON answers with v as JSON. Every answer of the API, errors
// included, is JSON so that scripts never have to parse HTML.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// handle registers h for method and path, and a JSON 405 for any other
// method on path (without it the catch-all 404 would answer).
func handle(mux *http.ServeMux, method, path string, h http.HandlerFunc) {
	mux.HandleFunc(method+" "+path, h)
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", method)
		writeError(w, http.StatusMethodNotAllowed, r.Method+" "+path+": use "+method)
	})
}

// notFound answers every path nothing else claims.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
}

// pathID reads the path's {id}, the id of a what ("task", "customer"):
// 400 unless it is a positive number.
func pathID(w http.ResponseWriter, r *http.Request, what string) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s id %q: want a positive number", what, r.PathValue("id")))
		return 0, false
	}
	return id, true
}

// writeStoreError answers 404 for what does not exist, 409 for a change
// that conflicts with the data, 500 otherwise.
func writeStoreError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
		return
	case errors.Is(err, store.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}
