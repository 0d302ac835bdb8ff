package journey

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"dirigent/store"
)

var vocab = map[string][]string{
	"billing": {"betrag", "zahlung", "abbuchung", "konto", "lastschrift", "gutschrift"},
	"outage":  {"internet", "störung", "router", "verbindung", "ausfall", "langsam"},
	"sales":   {"vertrag", "tarif", "upgrade", "preis", "wechsel", "neukunde"},
}

var noise = []string{"hallo", "bitte", "danke", "ich", "habe", "eine", "frage", "grüße", "seit", "gestern"}

// planted is the wrap-up code that resolves each intent at the first
// contact most often in the generated history.
var planted = map[string]string{"billing": "explain-invoice", "outage": "reset-line", "sales": "send-offer"}

var codes = map[string][]string{
	"billing": {"refund", "explain-invoice", "payment-plan"},
	"outage":  {"technician", "reset-line", "escalate"},
	"sales":   {"send-offer", "callback", "no-interest"},
}

func text(rng *rand.Rand, intent string) string {
	var ws []string
	for range 3 {
		ws = append(ws, vocab[intent][rng.IntN(len(vocab[intent]))])
	}
	for range 5 {
		ws = append(ws, noise[rng.IntN(len(noise))])
	}
	rng.Shuffle(len(ws), func(i, k int) { ws[i], ws[k] = ws[k], ws[i] })
	return strings.Join(ws, " ")
}

// TestLearnedIntentAndResolution replays a generated history in which one
// wrap-up code per intent resolves contacts at the first contact far more
// often than the others, trains, and checks that the classifier recognises
// new texts and that the learned next best action is the planted code.
func TestLearnedIntentAndResolution(t *testing.T) {
	j, st := newJourney(t)
	j.cfg.RepeatWindow = 72 * time.Hour
	j.cfg.ResolvedOutcomes = []string{"resolved"}
	j.cfg.MinConfidence = 0.6
	// Rules that never match text, so recognition of text is learned.
	j.intents = compileIntents([]IntentRule{
		{Name: "billing", Queue: "support", Dialled: []string{"+49 30 1234570"}},
		{Name: "outage", Queue: "support", Dialled: []string{"+49 30 1234571"}},
		{Name: "sales", Queue: "sales", Dialled: []string{"+49 30 1234572"}},
	}, j.normalizer)
	rng := rand.New(rand.NewPCG(5, 6))
	intents := []string{"billing", "outage", "sales"}
	base := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	if err := st.Bulk(ctx, func(b *store.Bulk) error {
		for range 600 {
			if err := b.CreateCustomer(&store.Customer{}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for cust := uint64(1); cust <= 600; cust++ {
		at := base.Add(time.Duration(rng.IntN(100*24)) * time.Hour)
		intent := intents[rng.IntN(3)]
		for attempt := 0; attempt < 4; attempt++ {
			code := codes[intent][rng.IntN(3)]
			p := 0.25
			if code == planted[intent] {
				p = 0.85
			}
			c := &store.Contact{CustomerID: cust, Channel: "email", Start: at, End: at.Add(10 * time.Minute),
				Intent: intent, Text: text(rng, intent), WrapCode: code, Outcome: "resolved"}
			solved := rng.Float64() < p
			// The agent's answer is no coming back of the customer's.
			reply := &store.Contact{CustomerID: cust, Channel: "email", Direction: "out", Start: at.Add(5 * time.Minute), Agent: "anna"}
			for _, c := range []*store.Contact{c, reply} {
				if err := st.AppendContact(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			if solved {
				break
			}
			at = at.Add(6 * time.Hour) // not solved: the customer is back the same day
		}
	}
	if err := j.Retrain(ctx); err != nil {
		t.Fatal(err)
	}

	right, total := 0, 0
	for range 300 {
		intent := intents[rng.IntN(3)]
		got, ok := j.Recognize(Incoming{Channel: "email", Body: text(rng, intent)})
		total++
		if ok && got.Name == intent && got.Source == "learned" {
			right++
		}
	}
	if acc := float64(right) / float64(total); acc < 0.9 {
		t.Errorf("learned intents right for %d of %d new texts (%.0f%%), want at least 90%%", right, total, acc*100)
	}
	// A rule still wins over the classifier.
	if got, _ := j.Recognize(Incoming{Channel: "voice", Dialled: "030 1234572", Body: text(rng, "billing")}); got.Name != "sales" || got.Source != "rule" {
		t.Errorf("rule vs classifier: %+v", got)
	}
	for _, intent := range intents {
		acts := j.NextBestActions(Context{Customer: &store.Customer{}}, "email", intent)
		if len(acts) != 1 || acts[0].Source != "learned" || acts[0].Text != "Resolve as "+planted[intent] {
			t.Errorf("%s: learned actions %+v, want %q", intent, acts, "Resolve as "+planted[intent])
		}
	}
}
