package journey

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"

	"dirigent/store"
)

// model is what the journey has learned from past contacts: a naive Bayes
// classifier from a contact's words to its final intent, and, per intent,
// how often each wrap-up code closed a contact at the first contact.
// It is rebuilt from the store, never downloaded: no cloud, no model file.
type model struct {
	trained time.Time
	// Naive Bayes (multinomial, Laplace smoothing).
	docs       map[string]int            // intent → training contacts
	words      map[string]map[string]int // intent → word → count
	wordTotals map[string]int            // intent → words
	vocabulary int
	total      int
	// First-contact resolutions: intent → wrap code → contacts it closed
	// at the first contact; and intent → contacts closed at first contact.
	fcr      map[string]map[string]int
	fcrTotal map[string]int
}

// tokens splits text into lower-case words of two or more letters or
// digits; German umlauts and ß are letters.
func tokens(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// train builds a model from every contact in the store. A contact teaches
// the classifier when it has a final intent among known ones; it counts
// as resolved at the first contact when its outcome is resolved and the
// same customer did not come back within the repeat window (fromCustomer:
// the agent's reply, say, is no coming back).
func (j *Journey) train(ctx context.Context) (*model, error) {
	m := &model{
		trained: j.deps.Now(), docs: map[string]int{}, words: map[string]map[string]int{},
		wordTotals: map[string]int{}, fcr: map[string]map[string]int{}, fcrTotal: map[string]int{},
	}
	known := map[string]bool{}
	for _, r := range j.intents {
		known[r.Name] = true
	}
	vocab := map[string]bool{}
	var customer uint64
	var pending []*store.Contact // this customer's contacts so far, in time order
	flush := func() {
		for i, c := range pending {
			if c.Intent == "" || c.WrapCode == "" || !slices.Contains(j.cfg.ResolvedOutcomes, c.Outcome) {
				continue
			}
			if next := slices.IndexFunc(pending[i+1:], fromCustomer); next >= 0 && pending[i+1+next].Start.Sub(c.Start) <= j.cfg.RepeatWindow {
				continue // the customer came back: not resolved at the first contact
			}
			if m.fcr[c.Intent] == nil {
				m.fcr[c.Intent] = map[string]int{}
			}
			m.fcr[c.Intent][c.WrapCode]++
			m.fcrTotal[c.Intent]++
		}
		pending = pending[:0]
	}
	err := j.deps.Store.ScanContacts(func(c *store.Contact) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.CustomerID != customer {
			flush()
			customer = c.CustomerID
		}
		pending = append(pending, c)
		if !known[c.Intent] {
			return nil
		}
		m.total++
		m.docs[c.Intent]++
		ws := m.words[c.Intent]
		if ws == nil {
			ws = map[string]int{}
			m.words[c.Intent] = ws
		}
		for _, w := range tokens(c.Subject + " " + c.Text) {
			ws[w]++
			m.wordTotals[c.Intent]++
			vocab[w] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("training: %w", err)
	}
	flush()
	m.vocabulary = len(vocab)
	return m, nil
}

// knows tells whether m has learned anything to classify with.
func (m *model) knows() bool { return m != nil && m.total > 0 }

// classify returns the most probable intent for text and its posterior
// probability, or ok false when the model knows nothing.
func (m *model) classify(text string) (intent string, confidence float64, ok bool) {
	if !m.knows() {
		return "", 0, false
	}
	ws := tokens(text)
	intents := make([]string, 0, len(m.docs))
	for in := range m.docs {
		intents = append(intents, in)
	}
	slices.Sort(intents)
	logp := make([]float64, len(intents))
	best := 0
	for i, in := range intents {
		lp := math.Log(float64(m.docs[in]) / float64(m.total))
		denom := math.Log(float64(m.wordTotals[in] + m.vocabulary + 1))
		for _, w := range ws {
			lp += math.Log(float64(m.words[in][w]+1)) - denom
		}
		logp[i] = lp
		if lp > logp[best] {
			best = i
		}
	}
	var sum float64
	for _, lp := range logp {
		sum += math.Exp(lp - logp[best])
	}
	return intents[best], 1 / sum, true
}

// resolution returns the wrap-up code that most often closed contacts of
// intent at the first contact, with how many it closed and of how many.
func (m *model) resolution(intent string) (code string, n, of int) {
	if m == nil {
		return "", 0, 0
	}
	for c, k := range m.fcr[intent] {
		if k > n || k == n && c < code {
			code, n = c, k
		}
	}
	return code, n, m.fcrTotal[intent]
}

// Retrain rebuilds the learned model from the store now.
func (j *Journey) Retrain(ctx context.Context) error {
	start := time.Now()
	m, err := j.train(ctx)
	if err != nil {
		return err
	}
	j.model.Store(m)
	if j.metrics != nil {
		j.metrics.trainSeconds.Observe(time.Since(start).Seconds())
		j.metrics.trainedContacts.Set(float64(m.total))
	}
	j.deps.Logger.Info("learned model retrained", "contacts", m.total, "intents", len(m.docs), "took", time.Since(start).Round(time.Millisecond))
	return nil
}
