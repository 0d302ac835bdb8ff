package journey

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"dirigent/store"
)

// TestRepeatContactsInAGeneratedHistory replays a generated history of
// calls, mails and chats and checks each new contact's repeat flag and last
// agent against a direct reading of the history.
func TestRepeatContactsInAGeneratedHistory(t *testing.T) {
	j, st := newJourney(t)
	j.cfg.RepeatWindow = 72 * time.Hour
	j.cfg.ResolvedOutcomes = []string{"resolved"}
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	type past struct {
		at      time.Time
		outcome string
		agent   string
		id      uint64
		bounce  bool
		out     bool
	}
	history := map[uint64][]past{}
	var customers []uint64
	for i := range 40 {
		c, _, err := j.Identify(ctx, KindPhone, fmt.Sprintf("030 %07d", 1000000+i), "")
		if err != nil {
			t.Fatal(err)
		}
		customers = append(customers, c.ID)
	}
	now := base
	repeats := 0
	for range 600 {
		now = now.Add(time.Duration(rng.IntN(240)) * time.Minute)
		cust := customers[rng.IntN(len(customers))]

		// What the journey must say, read directly off the history.
		var wantRepeat uint64
		wantAgent := ""
		for k := len(history[cust]) - 1; k >= 0; k-- {
			p := history[cust][k]
			if wantAgent == "" && p.agent != "" {
				wantAgent = p.agent
			}
			if wantRepeat == 0 && now.Sub(p.at) <= 72*time.Hour && p.outcome != "resolved" && p.outcome != store.OutcomeAutomatic && !p.bounce && !p.out {
				wantRepeat = p.id
			}
		}
		got, err := j.ContextFor(cust, now)
		if err != nil {
			t.Fatal(err)
		}
		var gotRepeat uint64
		if got.RepeatOf != nil {
			gotRepeat = got.RepeatOf.ID
			repeats++
		}
		if gotRepeat != wantRepeat || got.LastAgent != wantAgent {
			t.Fatalf("customer %d at %s: repeat of %d, last agent %q; want %d, %q", cust, now, gotRepeat, got.LastAgent, wantRepeat, wantAgent)
		}
		for _, e := range got.Recent {
			if e.Contact != nil && e.Contact.Text == "" {
				t.Fatalf("customer %d: contact %d without its text on the screen", cust, e.Contact.ID)
			}
		}
		// Routing's context says the same.
		rc, err := j.RoutingContextFor(cust, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		if (rc.RepeatOf == nil) != (got.RepeatOf == nil) || rc.RepeatOf != nil && (rc.RepeatOf.ID != gotRepeat || rc.RepeatOf.Text != "") || rc.LastAgent != wantAgent {
			t.Fatalf("customer %d at %s: routing's context %+v differs from %+v", cust, now, rc, got)
		}

		c := &store.Contact{
			CustomerID: cust, Channel: []string{"voice", "email", "message"}[rng.IntN(3)], Start: now,
			Outcome: []string{"resolved", "resolved", "callback", "", store.OutcomeAutomatic}[rng.IntN(5)], Text: "Guten Tag",
		}
		switch rng.IntN(8) {
		case 0:
			c.BounceOf = 1 // a bounce: repeats nothing, as an automatic mail
		case 1:
			c.Direction = "out" // the site's reply: neither
		}
		if rng.IntN(5) > 0 {
			c.Agent = fmt.Sprintf("agent%d", rng.IntN(6))
		}
		if err := st.AppendContact(ctx, c); err != nil {
			t.Fatal(err)
		}
		history[cust] = append(history[cust], past{at: now, outcome: c.Outcome, agent: c.Agent, id: c.ID, bounce: c.BounceOf != 0, out: c.Direction == "out"})
	}
	if repeats < 50 {
		t.Errorf("only %d repeat contacts in the history: the test does not exercise them", repeats)
	}
}

// routingSite is a journey with a repeat window of 72 h in which a
// caller's contact, stored, started two hours before at.
func routingSite(t *testing.T, stored store.Contact) (j *Journey, customer uint64, at time.Time) {
	t.Helper()
	j, st := newJourney(t)
	j.cfg.RepeatWindow = 72 * time.Hour
	j.cfg.ResolvedOutcomes = []string{"resolved"}
	c, _, err := j.Identify(ctx, KindPhone, "030 1234567", "")
	if err != nil {
		t.Fatal(err)
	}
	at = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	stored.CustomerID, stored.Start = c.ID, at.Add(-2*time.Hour)
	if err := st.AppendContact(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	return j, c.ID, at
}

// Contacts not yet stored (a batch being recorded) count as the newest.
func TestRoutingContextCountsUnstoredContacts(t *testing.T) {
	j, customer, at := routingSite(t, store.Contact{Outcome: "resolved", Agent: "anna"})
	unstored := []*store.Contact{
		{CustomerID: customer, Start: at.Add(-time.Hour)},
		{CustomerID: customer, Start: at.Add(-time.Minute), Outcome: "resolved"},
	}
	rc, err := j.RoutingContextFor(customer, at, unstored)
	if err != nil {
		t.Fatal(err)
	}
	if rc.RepeatOf != unstored[0] || rc.LastAgent != "anna" {
		t.Errorf("context %+v: want a repeat of the unstored unresolved contact, anna from the stored one", rc)
	}
}

// Only the newest 50 entries, unstored ones first, may make a repeat.
func TestRoutingContextLooksAtTheNewest50(t *testing.T) {
	j, customer, at := routingSite(t, store.Contact{})
	var unstored []*store.Contact // oldest first: one open, then 50 resolved
	unstored = append(unstored, &store.Contact{CustomerID: customer, Start: at.Add(-time.Hour)})
	for i := range 50 {
		unstored = append(unstored, &store.Contact{CustomerID: customer, Start: at.Add(time.Duration(i-50) * time.Second), Outcome: "resolved"})
	}
	if rc, err := j.RoutingContextFor(customer, at, unstored); err != nil || rc.RepeatOf != nil {
		t.Errorf("51 unstored, the newest 50 resolved: repeat of %+v, %v", rc.RepeatOf, err)
	}
	if rc, err := j.RoutingContextFor(customer, at, unstored[1:]); err != nil || rc.RepeatOf != nil {
		t.Errorf("50 unstored, all resolved, the stored one older: repeat of %+v, %v", rc.RepeatOf, err)
	}
	if rc, err := j.RoutingContextFor(customer, at, unstored[2:]); err != nil || rc.RepeatOf == nil || rc.RepeatOf.ID == 0 {
		t.Errorf("49 unstored, all resolved: want a repeat of the stored open contact, got %+v, %v", rc.RepeatOf, err)
	}
}
