package journey

import (
	"slices"
	"testing"
	"time"

	"dirigent/store"
)

func withRules(j *Journey) {
	yes := true
	j.intents = compileIntents([]IntentRule{
		{Name: "billing", Queue: "support", Subject: []string{"Rechnung", "invoice"}, Recipients: []string{"Billing@Example.com"}, Dialled: []string{"030 1234570"}},
		{Name: "sales", Queue: "sales", Body: []string{"angebot"}, Dialled: []string{"+49 30 1234571"}},
	}, j.normalizer)
	j.actions = []ActionRule{
		{Text: "Offer a payment plan", Reason: "Billing concern of a high-value customer", Priority: 50, Intents: []string{"billing"}, MinTier: 2},
		{Text: "Apologise and solve it now", Reason: "Still not solved", Priority: 100, Repeat: &yes},
		{Text: "Call back if the line drops", Reason: "Phone customers", Priority: 10, Channels: []string{"voice"}},
		{Text: "Follow up the callback", Reason: "Promised a callback", Priority: 50, LastOutcomes: []string{"callback"}},
	}
}

func TestRecognizeIntent(t *testing.T) {
	j, _ := newJourney(t)
	withRules(j)
	tests := []struct {
		in   Incoming
		want string
	}{
		{Incoming{Channel: "email", Subject: "Frage zur RECHNUNG 2026-11"}, "billing"},
		{Incoming{Channel: "email", Subject: "Hallo", Recipient: "Billing <billing@example.com>"}, "billing"},
		{Incoming{Channel: "voice", Dialled: "+49 30 1234570"}, "billing"},
		{Incoming{Channel: "voice", Dialled: "0301234571"}, "sales"},
		{Incoming{Channel: "message", Body: "Ich hätte gern ein Angebot"}, "sales"},
		{Incoming{Channel: "email", Subject: "Rechnung", Body: "angebot"}, "billing"}, // first rule wins
		{Incoming{Channel: "email", Subject: "Hallo"}, ""},
	}
	for _, tt := range tests {
		got, ok := j.Recognize(tt.in)
		if got.Name != tt.want || ok != (tt.want != "") {
			t.Errorf("%+v → %+v %v, want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestNextBestActions(t *testing.T) {
	j, _ := newJourney(t)
	withRules(j)
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	earlier := &store.Contact{ID: 7, Channel: "voice", Intent: "billing", Outcome: "callback", Start: at.Add(-time.Hour), End: at.Add(-50 * time.Minute)}
	ctx := Context{
		Customer: &store.Customer{ValueTier: 3},
		Recent:   []store.JourneyEntry{{Contact: earlier}},
		RepeatOf: earlier,
	}
	texts := func(as []Action) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.Text)
		}
		return out
	}
	got := j.NextBestActions(ctx, "voice", "billing")
	want := []string{"Apologise and solve it now", "Offer a payment plan", "Follow up the callback", "Call back if the line drops"}
	if !slices.Equal(texts(got), want) {
		t.Errorf("actions %v, want %v", texts(got), want)
	}
	if got[0].Reason != "Still not solved (earlier: voice, billing, outcome callback, 2026-11-22 09:00)" {
		t.Errorf("repeat reason %q", got[0].Reason)
	}
	// A low-tier first-time mail with no intent gets none of these.
	plain := Context{Customer: &store.Customer{ValueTier: 0}}
	if got := j.NextBestActions(plain, "email", ""); len(got) != 0 {
		t.Errorf("plain contact: %v", texts(got))
	}
}
