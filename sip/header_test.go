package sip

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
)

func TestHeaderText(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		max      int
		want     string
	}{
		{"plain", "Anna Schmidt", 64, "Anna Schmidt"},
		{"umlauts", "Jürgen Größer", 64, "Jürgen Größer"},
		{"trimmed", "  Anna  ", 64, "Anna"},
		{"line break", "Anna\r\nVia: SIP/2.0/UDP evil", 64, "Anna  Via: SIP/2.0/UDP evil"},
		{"joined errors", "first\nsecond", 100, "first second"},
		{"tab and DEL", "a\tb\x7fc", 64, "a b c"},
		{"NUL", "An\x00na", 64, "An na"},
		{"C1 control", "a\u0085b", 64, "a b"},
		{"line separator", "a\u2028b\u2029c", 64, "a b c"},
		{"quotes and backslashes", `Anna "the boss\" \Schmidt`, 64, "Anna the boss Schmidt"},
		{"only controls", "\r\n\t", 64, ""},
		{"invalid UTF-8", "a\xffb", 64, "a\uFFFDb"},
		{"cut at max", strings.Repeat("x", 70), 64, strings.Repeat("x", 64)},
		{"cut counts characters, not bytes", strings.Repeat("ü", 101), 100, strings.Repeat("ü", 100)},
		{"cut then trimmed", "abc def", 4, "abc"},
		{"exactly max", "abcd", 4, "abcd"},
		{"max zero", "abc", 0, ""},
	} {
		if got := headerText(tt.in, tt.max); got != tt.want {
			t.Errorf("%s: headerText(%q, %d) = %q, want %q", tt.name, tt.in, tt.max, got, tt.want)
		}
	}
}

// FuzzHeaderText: whatever a caller's display name or an error says, the
// text is short, printable UTF-8, and stands in a reason phrase and in a
// quoted display name that sipgo parses back unchanged.
func FuzzHeaderText(f *testing.F) {
	f.Add("Anna Schmidt", 64)
	f.Add("Anna\r\nVia: x", 64)
	f.Add(`"\"`, 100)
	f.Add("a\xff\u2028\u0085ü", 3)
	p := sip.NewParser()
	f.Fuzz(func(t *testing.T, in string, max int) {
		max = max & 0xff
		got := headerText(in, max)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > max || got != strings.TrimSpace(got) {
			t.Fatalf("headerText(%q, %d) = %q", in, max, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || r == '"' || r == '\\' || r == '\u2028' || r == '\u2029' {
				t.Fatalf("headerText(%q, %d) = %q holds %U", in, max, got, r)
			}
		}
		from := &sip.FromHeader{DisplayName: got, Address: sip.Uri{Scheme: "sip", User: "03055560001", Host: "127.0.0.1"}}
		from.Params = sip.NewParams()
		from.Params.Add("tag", "1")
		msg, err := p.ParseSIP([]byte("SIP/2.0 400 Bad Request (" + got + ")\r\n" +
			"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n" + from.Name() + ": " + from.Value() + "\r\n" +
			"To: <sip:support@127.0.0.1>;tag=2\r\nCall-ID: 1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"))
		if err != nil {
			t.Fatalf("%q does not parse in a response: %v", got, err)
		}
		res := msg.(*sip.Response)
		if res.Reason != "Bad Request ("+got+")" {
			t.Fatalf("reason %q, want Bad Request (%s)", res.Reason, got)
		}
		if dn := res.From().DisplayName; dn != got {
			t.Fatalf("display name %q, want %q", dn, got)
		}
	})
}
