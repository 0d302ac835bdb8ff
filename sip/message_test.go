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
		if to := replyURI(req); to != "" {
			var u sip.Uri
			if err := sip.ParseUri(to, &u); err != nil || u.Host == "" {
				t.Fatalf("reply address %q does not parse: %v", to, err)
			}
		}
	})
}
