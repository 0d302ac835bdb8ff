package sip

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
)

// FuzzMessage: any datagram that parses as a MESSAGE yields either text
// the message channel can take (non-empty UTF-8 within the bound) or an
// error, and a reply address that parses again; never a panic.
func FuzzMessage(f *testing.F) {
	f.Add("MESSAGE sip:support@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:03055560001@127.0.0.1>;tag=1\r\nTo: <sip:support@127.0.0.1>\r\nCall-ID: 1\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 5\r\n\r\nHallo", "127.0.0.1:5070")
	f.Add("MESSAGE sip:support@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP [::1]:5070;branch=z9hG4bK1\r\nFrom: <sip:joe@pbx>;tag=1\r\nTo: <sip:support@127.0.0.1>\r\nCall-ID: 1\r\nCSeq: 1 MESSAGE\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", "[::1]:5070")
	f.Add("MESSAGE sip:support@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:@x>;tag=1\r\nTo: <sip:support@127.0.0.1>\r\nCall-ID: 1\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain; charset=\"ISO-8859-1\r\nContent-Length: 2\r\n\r\n\xfc\xdf", "bad")
	f.Add("MESSAGE sip:support@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:03055560001@127.0.0.1>;tag=1\r\nTo: <sip:support@127.0.0.1>\r\nCall-ID: 1\r\nCSeq: 1 MESSAGE\r\nAccept-Language: da, en-gb;q=0.8\r\naccept-language:  \r\nAccept-Language: en;q=0.7\r\nContent-Length: 5\r\n\r\nHallo", "127.0.0.1:5070")
	p := sip.NewParser()
	f.Fuzz(func(t *testing.T, datagram, source string) {
		msg, err := p.ParseSIP([]byte(datagram))
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok || req.Method != sip.MESSAGE {
			return
		}
		req.SetSource(source)
		if text, err := messageText(req); err == nil {
			if strings.TrimSpace(text) == "" || len(text) > maxMessageBody || !utf8.ValidString(text) {
				t.Fatalf("text %q taken", text)
			}
		}
		if al := acceptLanguage(req); strings.ContainsAny(al, "\r\n") || al != "" && len(req.GetHeaders("Accept-Language")) == 0 {
			t.Fatalf("Accept-Language %q of %d headers", al, len(req.GetHeaders("Accept-Language")))
		}
		if to := replyURI(req); to != "" {
			var u sip.Uri
			if err := sip.ParseUri(to, &u); err != nil || u.Host == "" {
				t.Fatalf("reply address %q does not parse: %v", to, err)
			}
		}
	})
}

func TestAcceptLanguage(t *testing.T) {
	head := "MESSAGE sip:support@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:03055560001@127.0.0.1>;tag=1\r\nTo: <sip:support@127.0.0.1>\r\nCall-ID: 1\r\nCSeq: 1 MESSAGE\r\n"
	for _, tt := range []struct{ headers, want string }{
		{"", ""},
		{"Accept-Language: en\r\n", "en"},
		{"Accept-Language: da, en-gb;q=0.8\r\nAccept-Language: en;q=0.7\r\n", "da, en-gb;q=0.8, en;q=0.7"},
		{"accept-language: de\r\nAccept-Language:\r\n", "de"}, // empty is allowed: no preference
	} {
		msg, err := sip.NewParser().ParseSIP([]byte(head + tt.headers + "Content-Length: 0\r\n\r\n"))
		if err != nil {
			t.Fatalf("%q: %v", tt.headers, err)
		}
		if got := acceptLanguage(msg.(*sip.Request)); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.headers, got, tt.want)
		}
	}
}
