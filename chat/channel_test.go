package chat

import "testing"

func TestPeerLanguage(t *testing.T) {
	for _, tt := range []struct{ accept, want string }{
		{"", "de"},
		{"en", "en"},
		{"EN-us", "en"},
		{"de", "de"},
		{"de-CH", "de"},
		{"fr", "de"},
		{"fr, en;q=0.5", "en"},
		{"en;q=0.5, de;q=0.8", "de"},
		{"de;q=0.3, en-GB;q=0.7, fr", "en"},
		{"en;q=0, de;q=0.1", "de"},
		{"en;q=0", "de"},
		{"*", "de"},
		{"en, ???", "en"}, // an entry that does not parse is left out
		{"???, en;q=0.5", "en"},
		{"en;q=x", "de"},
		{"en;q=x, de", "de"},
	} {
		if got := peerLanguage(tt.accept); got != tt.want {
			t.Errorf("peerLanguage(%q) = %q, want %q", tt.accept, got, tt.want)
		}
	}
}

// FuzzPeerLanguage: whatever a peer sends as Accept-Language, its chat
// speaks German or English.
func FuzzPeerLanguage(f *testing.F) {
	f.Add("de-DE,de;q=0.9,en;q=0.8")
	f.Add("en-GB;q=0.5, *;q=0.1")
	f.Add("x-klingon, i-default;q=0.001")
	f.Fuzz(func(t *testing.T, accept string) {
		if got := peerLanguage(accept); got != "de" && got != "en" {
			t.Fatalf("peerLanguage(%q) = %q", accept, got)
		}
	})
}
