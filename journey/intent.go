package journey

import (
	"slices"
	"strings"
)

// IntentRule recognises a concern from what a contact says or where it
// went; see config.Intent.
type IntentRule struct {
	Name, Queue string
	Subject     []string // lower-case
	Body        []string // lower-case
	Recipients  []string // normalised e-mail addresses
	Dialled     []string // E.164
}

// Incoming is what a channel knows of a new contact for recognising its
// intent.
type Incoming struct {
	Channel   string
	Subject   string
	Body      string
	Recipient string // a mail's To address
	Dialled   string // the number a caller dialled
}

// Intent is a recognised concern.
type Intent struct {
	Name  string `json:"name"`
	Queue string `json:"queue"`
	// Source says how it was recognised: "rule" (a configured rule, which
	// always wins) or "learned" (the classifier trained on past contacts).
	Source string `json:"source"`
	// Confidence is 1 for a rule, the classifier's probability otherwise.
	Confidence float64 `json:"confidence"`
}

// compileIntents normalises the configured rules once.
func compileIntents(rules []IntentRule, n Normalizer) []IntentRule {
	out := make([]IntentRule, len(rules))
	for i, r := range rules {
		c := IntentRule{Name: r.Name, Queue: r.Queue}
		for _, s := range r.Subject {
			c.Subject = append(c.Subject, strings.ToLower(s))
		}
		for _, s := range r.Body {
			c.Body = append(c.Body, strings.ToLower(s))
		}
		for _, s := range r.Recipients {
			if e, err := Email(s); err == nil {
				c.Recipients = append(c.Recipients, e)
			}
		}
		for _, s := range r.Dialled {
			if p, err := n.Phone(s); err == nil {
				c.Dialled = append(c.Dialled, p)
			} else {
				c.Dialled = append(c.Dialled, s) // short service numbers stay as written
			}
		}
		out[i] = c
	}
	return out
}

// Recognize returns the first rule, in configuration order, that matches
// in; ok is false when none does (the channel's default queue applies).
func (j *Journey) Recognize(in Incoming) (intent Intent, ok bool) {
	// Lower-cased only for a rule that has words: a mail's body is
	// kilobytes.
	var subject, body string
	for _, r := range j.intents {
		if len(r.Subject) > 0 && subject == "" {
			subject = strings.ToLower(in.Subject)
		}
		if len(r.Body) > 0 && body == "" {
			body = strings.ToLower(in.Body)
		}
	}
	recipient, _ := Email(in.Recipient)
	// The dialled number is parsed only for a rule that has numbers:
	// parsing a phone number costs more than all the rest here.
	dialled, parsed := in.Dialled, false
	isDialled := func(numbers []string) bool {
		if in.Dialled == "" || len(numbers) == 0 {
			return false
		}
		if !parsed {
			if p, err := j.normalizer.Phone(in.Dialled); err == nil {
				dialled = p
			}
			parsed = true
		}
		return slices.Contains(numbers, dialled)
	}
	for _, r := range j.intents {
		if containsAny(subject, r.Subject) || containsAny(body, r.Body) ||
			recipient != "" && slices.Contains(r.Recipients, recipient) || isDialled(r.Dialled) {
			return Intent{Name: r.Name, Queue: r.Queue, Source: "rule", Confidence: 1}, true
		}
	}
	m := j.model.Load()
	if !m.knows() {
		return Intent{}, false
	}
	name, p, known := m.classify(in.Subject + " " + in.Body)
	if !known || p < j.cfg.MinConfidence {
		return Intent{}, false
	}
	for _, r := range j.intents {
		if r.Name == name {
			return Intent{Name: name, Queue: r.Queue, Source: "learned", Confidence: p}, true
		}
	}
	return Intent{}, false
}

func containsAny(text string, words []string) bool {
	for _, w := range words {
		if w != "" && strings.Contains(text, w) {
			return true
		}
	}
	return false
}
