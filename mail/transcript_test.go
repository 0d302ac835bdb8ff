package mail

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A chat transcript goes out through the smarthost (smtp-sink) and is an
// outgoing e-mail contact of the customer.
func TestTranscriptArrives(t *testing.T) {
	s, dir := siteWithSink(t, "")
	text := "[2026-11-23 09:00:01] Joe: Hallo\n[2026-11-23 09:00:09] Anna: Guten Tag!\n"
	if err := s.ch.SendTranscript(context.Background(), "Joe@Example.org", "Ihr Chat mit uns vom 23.11.2026", text); err != nil {
		t.Fatal(err)
	}
	r := received(t, s, dir)
	subject, _ := r.Header.Subject()
	to, _ := r.Header.AddressList("To")
	if subject != "Ihr Chat mit uns vom 23.11.2026" || len(to) != 1 || to[0].Address != "joe@example.org" || r.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("arrived: subject %q, to %v, Auto-Submitted %q", subject, to, r.Header.Get("Auto-Submitted"))
	}
	part, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(part.Body)
	if !strings.Contains(body.String(), "Anna: Guten Tag!") {
		t.Errorf("body %q", body.String())
	}
	joe := s.journeyOf(t, "joe@example.org")
	if len(joe) != 1 || joe[0].Direction != "out" || joe[0].Channel != "email" || joe[0].Text != text {
		t.Errorf("journey %+v", joe)
	}
	if err := s.ch.SendTranscript(context.Background(), "not an address", "x", "y"); err == nil {
		t.Error("a bad address was accepted")
	}
}
