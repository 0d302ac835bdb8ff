package desk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"dirigent/journey"
	"dirigent/store"
)

// ControlDeps are what the admin commands act on.
type ControlDeps struct {
	Logger *slog.Logger
	// Store writes a consistent copy of itself while it keeps serving.
	Store interface {
		Snapshot(w io.Writer) (int64, error)
	}
	Journey *journey.Journey
	// Customers exports and erases customers (GDPR), and merges them.
	Customers interface {
		ExportCustomer(id uint64) (*store.CustomerExport, error)
		EraseCustomer(ctx context.Context, id uint64) (store.ErasedCustomer, error)
		MergeSuggestions(id uint64) ([]store.MergeSuggestion, error)
		MergeCustomers(ctx context.Context, keep, other uint64, at time.Time) (*store.Merge, error)
		UnmergeCustomers(ctx context.Context, mergeID uint64, at time.Time) (*store.Merge, error)
		UnlinkIdentity(ctx context.Context, ch store.IdentityChange, keepOne bool) error
		AddIdentity(ctx context.Context, ch store.IdentityChange) error
	}
	// Passwords keeps desk logins' password hashes for `dirigent passwd`;
	// Logins says which names are logins now (the desk's Server.Logins,
	// which a reload changes).
	Passwords PasswordStore
	Logins    func() Logins
	// Sessions ends a login's desk sessions once its password is set
	// (the desk's Server); nil when there is no desk to tell.
	Sessions interface {
		EndSessionsOf(ctx context.Context, user string) (int, error)
	}
	// DrainTimeout bounds how long Run waits for open requests.
	DrainTimeout time.Duration
}

// passwordRequest is the body of PUT /desk-users/{name}/password: the
// bcrypt hash, made by the command, so the password itself never leaves
// the terminal it was typed into.
type passwordRequest struct {
	PasswordHash string `json:"password_hash"`
}

// Control is the admin API on a local unix socket. Access is granted by
// the socket's file mode (owner only): whoever can open it is the dirigent
// user or root, so it needs no passwords and works before any are set.
type Control struct {
	logger *slog.Logger
	ln     net.Listener
	srv    *http.Server
	drain  time.Duration
	path   string
}

// NewControl binds the socket at path, replacing a stale one left by a
// killed process. It refuses to take over a socket that a live daemon
// still answers on.
func NewControl(path string, deps ControlDeps) (*Control, error) {
	if deps.Logger == nil || deps.Store == nil || deps.Passwords == nil || deps.Logins == nil {
		return nil, errors.New("control socket: Logger, Store, Passwords and Logins are required")
	}
	logger := deps.Logger
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is answered by another process (is another dirigent running?)", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket: remove stale %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	handle(mux, http.MethodGet, "/backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		n, err := deps.Store.Snapshot(w)
		if err != nil {
			// Headers are gone once bytes were written; the client notices
			// the short body because it verifies the file.
			logger.Error("backup failed", "bytes", n, "err", err)
			if n == 0 {
				writeError(w, http.StatusInternalServerError, "backup failed: "+err.Error())
			}
			return
		}
		logger.Info("backup written", "bytes", n)
	})
	handle(mux, http.MethodPost, "/import/customers", func(w http.ResponseWriter, r *http.Request) {
		res, err := deps.Journey.ImportCustomers(r.Context(), r.Body)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		logger.Info("customers imported", "rows", res.Rows, "created", res.Created, "updated", res.Updated, "problems", len(res.Problems))
		writeJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("GET /customers/{id}/export", func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r, "customer")
		if !ok {
			return
		}
		exp, err := deps.Customers.ExportCustomer(id)
		if err != nil {
			writeStoreError(w, err)
			return
		}
		logger.Info("customer exported", "customer", id)
		writeJSON(w, http.StatusOK, exp)
	})
	mux.HandleFunc("DELETE /customers/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r, "customer")
		if !ok {
			return
		}
		n, err := deps.Customers.EraseCustomer(r.Context(), id)
		if err != nil {
			writeStoreError(w, err)
			return
		}
		logger.Info("customer erased", "customer", id, "journey_entries", n.JourneyItems)
		writeJSON(w, http.StatusOK, n)
	})
	mux.HandleFunc("GET /customers/{id}/merge-suggestions", func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r, "customer")
		if !ok {
			return
		}
		sug, err := deps.Customers.MergeSuggestions(id)
		if err != nil {
			writeStoreError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"suggestions": sug})
	})
	mux.HandleFunc("POST /customers/{id}/merge/{other}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r, "customer")
		if !ok {
			return
		}
		other, err := strconv.ParseUint(r.PathValue("other"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("customer id %q: want a positive number", r.PathValue("other")))
			return
		}
		rec, err := deps.Customers.MergeCustomers(r.Context(), id, other, time.Now().UTC())
		if err != nil {
			writeStoreError(w, err)
			return
		}
		logger.Info("customers merged", "keep", id, "merged", other, "merge", rec.ID)
		writeJSON(w, http.StatusOK, rec)
	})
	identityChange := func(apply func(context.Context, store.IdentityChange) error, done string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			id, identity, ok := identityInPath(w, r, deps.Journey)
			if !ok {
				return
			}
			ch := store.IdentityChange{Identity: identity, CustomerID: id, By: "admin", At: time.Now().UTC()}
			if err := apply(r.Context(), ch); err != nil {
				writeStoreError(w, err)
				return
			}
			logger.Info(done, "customer", id, "identity", identity)
			writeJSON(w, http.StatusOK, map[string]any{"customer": id, "identity": identity})
		}
	}
	mux.HandleFunc("DELETE /customers/{id}/identities/{identity}", identityChange(func(ctx context.Context, ch store.IdentityChange) error {
		return deps.Customers.UnlinkIdentity(ctx, ch, false)
	}, "identity unlinked"))
	mux.HandleFunc("POST /customers/{id}/identities/{identity}", identityChange(func(ctx context.Context, ch store.IdentityChange) error {
		return deps.Customers.AddIdentity(ctx, ch) // not a method value: Customers may be nil (tests of other routes)
	}, "identity linked"))
	mux.HandleFunc("POST /merges/{id}/undo", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("merge id %q: want a positive number", r.PathValue("id")))
			return
		}
		rec, err := deps.Customers.UnmergeCustomers(r.Context(), id, time.Now().UTC())
		if err != nil {
			writeStoreError(w, err)
			return
		}
		logger.Info("merge undone", "merge", id, "restored", rec.Merged.ID)
		writeJSON(w, http.StatusOK, rec)
	})
	handle(mux, http.MethodPut, "/desk-users/{name}/password", func(w http.ResponseWriter, r *http.Request) {
		var req passwordRequest
		if err := decodeBody(r.Body, &req); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		name := r.PathValue("name")
		if err := SetPassword(r.Context(), deps.Passwords, deps.Logins(), name, []byte(req.PasswordHash)); err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, ErrRefused) {
				code = http.StatusBadRequest
			}
			writeError(w, code, strings.TrimPrefix(err.Error(), ErrRefused.Error()+": "))
			return
		}
		ended := 0
		if deps.Sessions != nil {
			n, err := deps.Sessions.EndSessionsOf(context.WithoutCancel(r.Context()), name)
			if err != nil {
				// Ended all the same; the next start refuses the records.
				logger.Warn("desk sessions ended, their records not deleted", "user", name, "err", err)
			}
			ended = n
		}
		logger.Info("desk password set", "user", name, "sessions_ended", ended)
		writeJSON(w, http.StatusOK, map[string]string{"user": name, "status": "password set", "sessions_ended": strconv.Itoa(ended)})
	})
	mux.HandleFunc("/", notFound)
	return &Control{
		logger: logger,
		ln:     ln,
		srv:    &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		drain:  deps.DrainTimeout,
		path:   path,
	}, nil
}

// Run serves until ctx ends, then removes the socket.
func (c *Control) Run(ctx context.Context) error {
	defer os.Remove(c.path)
	return serveUntil(ctx, c.srv, c.ln, c.drain)
}

// Close releases the socket when Run was never called.
func (c *Control) Close() error {
	defer os.Remove(c.path)
	return c.srv.Close()
}
