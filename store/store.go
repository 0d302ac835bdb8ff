package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Errors callers can test for.
var (
	ErrLocked   = errors.New("store is locked by another process")
	ErrNotFound = errors.New("not found")
	ErrClosed   = errors.New("store is closed")
	// ErrTooLarge: something to keep is beyond its limit (a reply beyond
	// what the smarthost takes).
	ErrTooLarge = errors.New("too large")
)

// Options for Open.
type Options struct {
	Path string
	// LockTimeout bounds the wait for the file lock; 2 s when zero.
	LockTimeout time.Duration
	Logger      *slog.Logger
	// Registerer receives the store's metrics; nil registers none.
	Registerer prometheus.Registerer

	// intakeIdle replaces intakeIdleRotate in tests.
	intakeIdle time.Duration
}

// Store is the open database.
type Store struct {
	db      *bolt.DB
	path    string
	logger  *slog.Logger
	metrics *metrics

	writes    chan *write
	intake    *intake
	closing   chan struct{}
	committed chan struct{} // closed when the committer has exited
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the store at opts.Path, migrates its
// schema and starts the group committer.
func Open(opts Options) (*Store, error) {
	if opts.Logger == nil {
		return nil, errors.New("store: Logger is required")
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o750); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err := bolt.Open(opts.Path, 0o640, &bolt.Options{
		Timeout: opts.LockTimeout,
		// The freelist is rebuilt on open instead of written on every
		// commit: fewer pages per fsync, the same durability.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store %s is in use by another process (is another dirigent running?): %w", opts.Path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", opts.Path, err)
	}
	s := &Store{
		db:        db,
		path:      opts.Path,
		logger:    opts.Logger,
		writes:    make(chan *write),
		closing:   make(chan struct{}),
		committed: make(chan struct{}),
	}
	if err := db.Update(func(tx *bolt.Tx) error { return migrate(tx, migrations) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", opts.Path, err)
	}
	if opts.Registerer != nil {
		if s.metrics, err = newMetrics(opts.Registerer, s); err != nil {
			db.Close()
			return nil, err
		}
	}
	go s.commitLoop()
	if s.intake, err = openIntake(s, opts.intakeIdle); err != nil {
		close(s.closing)
		<-s.committed
		db.Close()
		return nil, fmt.Errorf("store %s: %w", opts.Path, err)
	}
	return s, nil
}

// Path is the file the store lives in.
func (s *Store) Path() string { return s.path }

// Close lets the committer finish what was submitted, then closes the
// file. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		// What is logged but not yet applied is applied at the next Open.
		<-s.intake.done
		<-s.intake.applied
		<-s.committed
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// Ping runs a read transaction, to show that the store still answers.
func (s *Store) Ping(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		done <- s.db.View(func(tx *bolt.Tx) error {
			_, err := schemaVersion(tx)
			return err
		})
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("store read: %w", ctx.Err())
	}
}

// Snapshot writes a consistent copy of the whole store to w from one read
// transaction, while writes go on. Mail acknowledged before the call is
// in it: the intake log is applied first.
func (s *Store) Snapshot(w io.Writer) (int64, error) {
	if err := s.intake.flush(); err != nil {
		return 0, fmt.Errorf("applying the intake log before the snapshot: %w", err)
	}
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Verify checks a store file, such as a backup: bbolt's consistency check
// and a schema this binary can read.
func Verify(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		v, err := schemaVersion(tx)
		if err != nil {
			return fmt.Errorf("verify %s: %w", path, err)
		}
		if v != len(migrations) {
			return fmt.Errorf("verify %s: schema version %d, this dirigent uses %d", path, v, len(migrations))
		}
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("verify %s: %w", path, errors.Join(errs...))
		}
		return nil
	})
}
