package journey

import (
	"fmt"
	"slices"
	"strings"
)

// ActionRule is a configured next-best-action rule; see config.Action.
type ActionRule struct {
	Text, Reason string
	Priority     int
	Intents      []string
	Channels     []string
	MinTier      int
	Repeat       *bool
	LastOutcomes []string
	OpenContact  *bool
}

// Action is one recommendation for the agent, with its reason.
type Action struct {
	Text     string `json:"action"`
	Reason   string `json:"reason"`
	Priority int    `json:"priority"`
	Source   string `json:"source"` // "rule" or "learned"
}

// NextBestActions ranks the rules that hold for a contact on channel
// with intent (empty when none was recognised) and its context: highest
// priority first, configuration order among equals.
func (j *Journey) NextBestActions(c Context, channel, intent string) []Action {
	var lastOutcome string
	openContact := false
	for _, e := range c.Recent {
		if e.Contact == nil {
			continue
		}
		if lastOutcome == "" {
			lastOutcome = e.Contact.Outcome
		}
		if e.Contact.End.IsZero() {
			openContact = true
		}
	}
	tier := 0
	if c.Customer != nil {
		tier = c.Customer.ValueTier
	}
	var out []Action
	for _, r := range j.actions {
		if len(r.Intents) > 0 && !slices.Contains(r.Intents, intent) ||
			len(r.Channels) > 0 && !slices.Contains(r.Channels, channel) ||
			tier < r.MinTier ||
			r.Repeat != nil && *r.Repeat != (c.RepeatOf != nil) ||
			len(r.LastOutcomes) > 0 && !slices.Contains(r.LastOutcomes, lastOutcome) ||
			r.OpenContact != nil && *r.OpenContact != openContact {
			continue
		}
		out = append(out, Action{Text: r.Text, Reason: reason(r, c), Priority: r.Priority, Source: "rule"})
	}
	if code, n, of := j.model.Load().resolution(intent); intent != "" && n > 0 {
		out = append(out, Action{
			Text:     "Resolve as " + code,
			Reason:   fmt.Sprintf("%d of %d %s contacts resolved at the first contact were closed as %s", n, of, intent, code),
			Priority: j.cfg.LearnedPriority,
			Source:   "learned",
		})
	}
	slices.SortStableFunc(out, func(a, b Action) int { return b.Priority - a.Priority })
	return out
}

// reason is the rule's reason, with what happened before when the
// contact repeats an unresolved one: the agent should see why.
func reason(r ActionRule, c Context) string {
	if r.Repeat == nil || !*r.Repeat || c.RepeatOf == nil {
		return r.Reason
	}
	prev := c.RepeatOf
	var b strings.Builder
	b.WriteString(r.Reason)
	b.WriteString(" (earlier: ")
	b.WriteString(prev.Channel)
	if prev.Intent != "" {
		b.WriteString(", " + prev.Intent)
	}
	if prev.Outcome != "" {
		b.WriteString(", outcome " + prev.Outcome)
	} else {
		b.WriteString(", still open")
	}
	b.WriteString(", " + prev.Start.Format("2006-01-02 15:04") + ")")
	return b.String()
}
