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
		if j.repeats(e.Contact, at) {
			ctx.RepeatOf = e.Contact
			break
		}
	}
	ctx.LastAgent, err = j.deps.Store.LastAgent(customerID, at)
	return ctx, err
}

// RoutingContextFor is what queueing a new contact needs of its context:
// the customer, RepeatOf and LastAgent, and not Recent. It reads the
// journey only as far back as a repeat could be, and no texts, since
// reading is most of the cost of a new contact. unstored are the
// customer's contacts not yet in the store, oldest first (those of a
// batch being recorded): they come after the stored ones.
func (j *Journey) RoutingContextFor(customerID uint64, at time.Time, unstored []*store.Contact) (Context, error) {
	c, err := j.deps.Store.Customer(customerID)
	if err != nil {
		return Context{}, err
	}
	ctx := Context{Customer: c}
	for i, ct := range slices.Backward(unstored) {
		if ctx.LastAgent == "" && ct.Agent != "" && ct.Start.Before(at) {
			ctx.LastAgent = ct.Agent
		}
		// Only the newest recentEntries entries may make a repeat.
		if newest := len(unstored) - i; ctx.RepeatOf == nil && newest <= recentEntries && j.repeats(ct, at) {
			ctx.RepeatOf = ct
		}
	}
	if ctx.LastAgent == "" {
		if ctx.LastAgent, err = j.deps.Store.LastAgent(customerID, at); err != nil {
			return Context{}, err
		}
	}
	seen := len(unstored)
	if ctx.RepeatOf != nil || j.cfg.RepeatWindow <= 0 || seen >= recentEntries {
		return ctx, nil
	}
	err = j.deps.Store.JourneyFacts(customerID, at, func(e store.JourneyEntry) bool {
		seen++
		if ct := e.Contact; ct != nil {
			if at.Sub(ct.Start) > j.cfg.RepeatWindow {
				return false // older entries are older still
			}
			if j.repeats(ct, at) {
				ctx.RepeatOf = ct
				return false
			}
		}
		return seen < recentEntries
	})
	return ctx, err
}

// repeats tells whether a new contact arriving at at repeats ct: ct
// came from the customer, started before it, within the repeat window,
// and was not resolved.
func (j *Journey) repeats(ct *store.Contact, at time.Time) bool {
	return ct != nil && fromCustomer(ct) &&
		ct.Start.Before(at) && j.cfg.RepeatWindow > 0 && at.Sub(ct.Start) <= j.cfg.RepeatWindow && !j.resolved(ct)
}

// fromCustomer tells whether the customer came to the site with ct: mail
// that a program sent (an auto-reply, a bounce) and the site's own (a
// reply, an acknowledgement) are not the customer coming back.
func fromCustomer(ct *store.Contact) bool {
	return ct.Direction != "out" && ct.Outcome != store.OutcomeAutomatic && ct.BounceOf == 0
}

func (j *Journey) resolved(c *store.Contact) bool {
	return slices.Contains(j.cfg.ResolvedOutcomes, c.Outcome)
}
