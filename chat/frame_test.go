package chat

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeFrame(t *testing.T) {
	token := strings.Repeat("a", 43)
	tests := []struct {
		in     string
		reason string // "" accepted
	}{
		{`{"type":"hello"}`, ""},
		{`{"type":"hello","session":"` + token + `","last_seq":7,"queue":"support","lang":"de"}`, ""},
		{`{"type":"hello","name":"Jörg Müller","email":"joerg@example.com","phone":"+49 30 123456"}`, ""},
		{`{"type":"message","id":"m1","text":"Hallo\nzweite Zeile"}`, ""},
		{`{"type":"typing","active":false}`, ""},
		{`{"type":"transcript","email":"a@b.example"}`, ""},
		{`{"type":"end"}`, ""},
		{``, "syntax"},
		{`null`, "syntax"},
		{`[]`, "syntax"},
		{`"hello"`, "syntax"},
		{`{"type":"hello"} {}`, "syntax"},
		{`{"type":"hello",}`, "syntax"},
		{`{"type":"hello","colour":"red"}`, "field"},
		{`{"type":"message","id":"m1","text":5}`, "syntax"},
		{`{"type":"hello","last_seq":-1,"session":"` + token + `"}`, "syntax"},
		{`{"type":"shout"}`, "type"},
		{`{}`, "type"},
		{`{"TYPE":"end"}`, "type"},
		{`{"type":"end","text":"bye"}`, "field"},
		{`{"type":"typing","active":true,"text":"x"}`, "field"},
		{`{"type":"typing"}`, "field"},
		{`{"type":"hello","session":"short"}`, "field"},
		{`{"type":"hello","last_seq":1}`, "field"},
		{`{"type":"hello","lang":"fr"}`, "field"},
		{`{"type":"hello","name":"a\u0000b"}`, "field"},
		{`{"type":"hello","name":"` + strings.Repeat("x", 101) + `"}`, "field"},
		{`{"type":"message","text":"no id"}`, "field"},
		{`{"type":"message","id":"m1","text":"   "}`, "field"},
		{`{"type":"message","id":"m1","text":"bell\u0007"}`, "field"},
		{`{"type":"message","id":"` + strings.Repeat("i", 65) + `","text":"x"}`, "field"},
		{`{"type":"message","id":"m1","text":"` + strings.Repeat("x", 101) + `"}`, "too_large"},
		{`{"type":"transcript"}`, "field"},
		{"{\"type\":\"message\",\"id\":\"m1\",\"text\":\"\xff\"}", "encoding"},
	}
	for _, tt := range tests {
		f, err := DecodeFrame([]byte(tt.in), 100)
		var bf *BadFrame
		switch {
		case tt.reason == "" && err != nil:
			t.Errorf("%s: %v", tt.in, err)
		case tt.reason != "" && !errors.As(err, &bf):
			t.Errorf("%s: accepted as %+v, want %s", tt.in, f, tt.reason)
		case tt.reason != "" && bf.Reason != tt.reason:
			t.Errorf("%s: reason %s (%v), want %s", tt.in, bf.Reason, err, tt.reason)
		}
	}
}

// FuzzDecodeFrame: no input crashes the parser, every refusal is a
// *BadFrame, and what it accepts is within the limits.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","session":"` + strings.Repeat("A", 43) + `","last_seq":3,"lang":"en","queue":"support"}`,
		`{"type":"hello","name":"Ann","email":"ann@example.com","phone":"030 1234"}`,
		`{"type":"message","id":"x1","text":"Guten Tag"}`,
		`{"type":"typing","active":true}`,
		`{"type":"transcript","email":"ann@example.com"}`,
		`{"type":"end"}`,
		`{"type":"message","id":"x1","text":"\u2028"}`,
		`{"type":"end"}{"type":"end"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 256
		fr, err := DecodeFrame(data, limit)
		if err != nil {
			var bf *BadFrame
			if !errors.As(err, &bf) || bf.Reason == "" {
				t.Fatalf("error %T %v is not a *BadFrame with a reason", err, err)
			}
			return
		}
		if _, ok := allowed[fr.Type]; !ok {
			t.Fatalf("accepted type %q", fr.Type)
		}
		if len(fr.Text) > limit || !utf8.ValidString(fr.Text) || !printable(fr.Name, false) {
			t.Fatalf("accepted out-of-limit frame %+v", fr)
		}
		if fr.Type == FrameMessage && (fr.ID == "" || strings.TrimSpace(fr.Text) == "") {
			t.Fatalf("accepted message without id or text: %+v", fr)
		}
		if _, err := json.Marshal(fr); err != nil {
			t.Fatal(err)
		}
	})
}
