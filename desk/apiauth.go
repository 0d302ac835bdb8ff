package desk

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
)

// APIToken is a configured machine client: its name and the SHA-256 of its
// bearer token.
type APIToken struct {
	Name   string
	SHA256 string // hex
}

// requireToken lets a request through only with the bearer token of a
// configured API client. Every token is compared, in constant time, so
// the answer's timing tells nothing about which one was close.
func requireToken(tokens []APIToken, next http.HandlerFunc) http.HandlerFunc {
	sums := make([][]byte, 0, len(tokens))
	for _, t := range tokens {
		if b, err := hex.DecodeString(t.SHA256); err == nil {
			sums = append(sums, b)
		}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dirigent"`)
			writeError(w, http.StatusUnauthorized, "this endpoint needs an API token: Authorization: Bearer <token>")
			return
		}
		sum := sha256.Sum256([]byte(token))
		match := 0
		for _, s := range sums {
			match |= subtle.ConstantTimeCompare(sum[:], s)
		}
		if match != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dirigent", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unknown API token")
			return
		}
		next(w, r)
	}
}
