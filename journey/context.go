package journey

import (
	"slices"
	"time"

	"dirigent/store"
)

// recentEntries is how much of the journey a contact's context carries.
const recentEntries = 50

// Context is what an agent and the router need to know about a customer
// when a new contact arrives.
type Context struct {
	Customer *store.Customer
	Recent   []store.JourneyEntry // newest first
	// RepeatOf is the latest unresolved contact within the repeat window,
	// on any channel: this contact is a repeat of it. Nil when none.
	RepeatOf *store.Contact
	// LastAgent handled the customer's latest contact that had an agent.
	LastAgent string
}

// ContextFor gathers the context of a contact of customerID arriving at
// at.
func (j *Journey) ContextFor(customerID uint64, at time.Time) (Context, error) {
	c, err := j.deps.Store.Customer(customerID)
	if err != nil {
		return Context{}, err
	}
	recent, err := j.deps.Store.Journey(customerID, time.Time{}, recentEntries)
	if err != nil {
		return Context{}, err
	}
	ctx := Context{Customer: c, Recent: recent}
	for _, e := range recent {
		ct := e.Contact
		if ct == nil || !ct.Start.Before(at) {
			continue
		}
		if ctx.LastAgent == "" && ct.Agent != "" {
			ctx.LastAgent = ct.Agent
		}
		if ctx.RepeatOf == nil && j.cfg.RepeatWindow > 0 && at.Sub(ct.Start) <= j.cfg.RepeatWindow && !j.resolved(ct) {
			ctx.RepeatOf = ct
		}
	}
	return ctx, nil
}

func (j *Journey) resolved(c *store.Contact) bool {
	return slices.Contains(j.cfg.ResolvedOutcomes, c.Outcome)
}
