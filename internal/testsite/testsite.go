// Package testsite builds, for a channel's tests, what the daemon gives
// every channel: a store in the test's temporary directory, the journey
// over it and the router. The router is built before the channel that
// hears it, so its events, offers and revocations reach the channel
// through hooks set once the channel exists (Wire), as the daemon's
// journal tee does.
//
// It imports store, journey and router, so their own tests cannot use
// it (an import cycle); the channels' tests (mail, sip, chat) and the
// daemon's use it.
package testsite

import (
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

// Options are what a channel's tests choose of their site.
type Options struct {
	Logger *slog.Logger
	// StorePath is the store's file; "" is one in the test's temporary
	// directory.
	StorePath string
	// StoreRegisterer takes the store's metrics; nil registers none.
	StoreRegisterer prometheus.Registerer
	// Intents are the journey's intent rules, in the channel's terms
	// (a mail's subject, a chat's text, a dialled number).
	Intents []journey.IntentRule
	Router  router.Config
}

// Hooks are the channel's ends of the router; nil ones are not called.
type Hooks struct {
	Record   func(router.Event) // the journal's events
	OnOffer  func(router.Offer)
	OnRevoke func(router.Offer)
}

// Site is the store, journey and router of a test. The store is closed
// when the test ends; the router does not run until the test starts it.
type Site struct {
	Store   *store.Store
	Journey *journey.Journey
	Router  *router.Router
	hooks   atomic.Pointer[Hooks]
}

// New opens the store, builds the journey (German numbers, repeats
// within 72 h, the outcome "resolved" resolves) and the router, failing
// the test on an error.
func New(t testing.TB, o Options) *Site {
	t.Helper()
	path := o.StorePath
	if path == "" {
		path = filepath.Join(t.TempDir(), "d.db")
	}
	st, err := store.Open(store.Options{Path: path, Logger: o.Logger, Registerer: o.StoreRegisterer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	j, err := journey.New(journey.Config{
		Region: "DE", RepeatWindow: 72 * time.Hour, ResolvedOutcomes: []string{"resolved"}, Intents: o.Intents,
	}, journey.Deps{Store: st, Logger: o.Logger})
	if err != nil {
		t.Fatal(err)
	}
	s := &Site{Store: st, Journey: j}
	s.hooks.Store(&Hooks{})
	s.Router, err = router.New(o.Router, router.Deps{
		Logger: o.Logger,
		Journal: journal(func(e router.Event) {
			if f := s.hooks.Load().Record; f != nil {
				f(e)
			}
		}),
		OnOffer: func(o router.Offer) {
			if f := s.hooks.Load().OnOffer; f != nil {
				f(o)
			}
		},
		OnRevoke: func(o router.Offer) {
			if f := s.hooks.Load().OnRevoke; f != nil {
				f(o)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Wire passes the router's events, offers and revocations to h from now
// on; before, they are dropped.
func (s *Site) Wire(h Hooks) { s.hooks.Store(&h) }

// journal keeps no router journal: it passes each event on.
type journal func(router.Event)

func (f journal) Record(e router.Event) { f(e) }
