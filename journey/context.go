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
// at, for the agent's screen: the recent contacts with their texts.
func (j *Journey) ContextFor(customerID uint64, at time.Time) (Context, error) {
	return j.contextFor(customerID, at, j.deps.Store.Journey, nil)
}

// RoutingContextFor is ContextFor with the recent contacts' texts left
// empty, for queueing a new contact: the customer, RepeatOf and LastAgent
// need no texts, and reading them is most of the cost for a customer who
// writes long mails. unstored are the customer's contacts not yet in the
// store, oldest first (those of a batch being recorded): they come after
// the stored ones.
func (j *Journey) RoutingContextFor(customerID uint64, at time.Time, unstored []*store.Contact) (Context, error) {
	return j.contextFor(customerID, at, j.deps.Store.JourneyWithoutTexts, unstored)
}

func (j *Journey) contextFor(customerID uint64, at time.Time, read func(customerID uint64, before time.Time, limit int) ([]store.JourneyEntry, error), unstored []*store.Contact) (Context, error) {
	c, err := j.deps.Store.Customer(customerID)
	if err != nil {
		return Context{}, err
	}
	stored, err := read(customerID, time.Time{}, recentEntries)
	if err != nil {
		return Context{}, err
	}
	var recent []store.JourneyEntry
	for _, ct := range slices.Backward(unstored) {
		recent = append(recent, store.JourneyEntry{Contact: ct})
	}
	recent = append(recent, stored...)
	ctx := Context{Customer: c, Recent: recent[:min(len(recent), recentEntries)]}
	for _, e := range ctx.Recent {
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
