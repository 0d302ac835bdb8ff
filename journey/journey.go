package journey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/prometheus/client_golang/prometheus"

	"dirigent/store"
)

// Config is the journey package's part of the configuration.
type Config struct {
	// Region is the ISO 3166 country whose national numbers have no
	// country code, e.g. "DE".
	Region string
	// RepeatWindow: a contact this soon after an unresolved one is a
	// repeat contact; 0 turns the detection off.
	RepeatWindow time.Duration
	// ResolvedOutcomes are the outcomes that count as resolved.
	ResolvedOutcomes []string
	Intents          []IntentRule
	Actions          []ActionRule
	// MinConfidence is the least posterior probability at which a learned
	// intent is used when no rule matched.
	MinConfidence float64
	// RetrainInterval is how often the learned model is rebuilt.
	RetrainInterval time.Duration
	// LearnedPriority ranks the learned next best action among the rules.
	LearnedPriority int
	// TextRetention: contact texts older than this are dropped daily; 0
	// keeps them.
	TextRetention time.Duration
}

// Deps are what the journey needs from the daemon.
type Deps struct {
	Store      *store.Store
	Logger     *slog.Logger
	Now        func() time.Time
	Registerer prometheus.Registerer // nil: no metrics
}

// Journey identifies customers and tells their history.
type Journey struct {
	cfg        Config
	normalizer Normalizer
	intents    []IntentRule
	actions    []ActionRule
	deps       Deps
	metrics    *metrics
	model      atomic.Pointer[model] // nil until the first training
}

// New checks cfg and returns a Journey.
func New(cfg Config, deps Deps) (*Journey, error) {
	if deps.Store == nil || deps.Logger == nil {
		return nil, errors.New("journey: Store and Logger are required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if phonenumbers.GetCountryCodeForRegion(cfg.Region) == 0 {
		return nil, fmt.Errorf("journey: unknown region %q (want an ISO 3166 code such as DE)", cfg.Region)
	}
	if cfg.RetrainInterval <= 0 {
		cfg.RetrainInterval = time.Hour
	}
	n := Normalizer{Region: cfg.Region}
	j := &Journey{cfg: cfg, normalizer: n, intents: compileIntents(cfg.Intents, n), actions: cfg.Actions, deps: deps}
	if deps.Registerer != nil {
		var err error
		if j.metrics, err = newMetrics(deps.Registerer); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// Normalizer returns the identity normaliser for the configured region.
func (j *Journey) Normalizer() Normalizer { return j.normalizer }

// Identify returns the customer behind an identity as a channel saw it
// (a caller number, a From address, a SIP URI). An unknown identity gets a
// new customer, named name when the channel knows one.
func (j *Journey) Identify(ctx context.Context, kind, raw, name string) (c *store.Customer, created bool, err error) {
	id, err := j.normalizer.Normalize(kind, raw)
	if err != nil {
		return nil, false, err
	}
	// Known identities, nearly all of them, need no write transaction.
	cid, err := j.deps.Store.LookupIdentity(id.String())
	if errors.Is(err, store.ErrNotFound) {
		cid, created, err = j.deps.Store.IdentifyOrCreate(ctx, id.String(), &store.Customer{Name: name, Created: j.deps.Now().UTC()})
	}
	if err != nil {
		return nil, false, err
	}
	c, err = j.deps.Store.Customer(cid)
	return c, created, err
}
