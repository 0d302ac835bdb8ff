package sip

import (
	"strconv"
	"testing"
	"time"

	"dirigent/internal/testrun"
)

// TestDrain: while the daemon stops, a new call gets 503 and the call in
// progress goes on until its caller hangs up; then Run returns, well
// before the drain timeout.
func TestDrain(t *testing.T) {
	s := startSite(t, testConfig(), "")
	media := newCallerMedia(t)
	caller := s.sipp(t, "caller-hangup.xml", "-p", strconv.Itoa(freePort(t)), "-m", "1", "-d", "2000",
		"-key", "dialled", testNumber, "-key", "caller", "03055530001", "-key", "mip", "127.0.0.1", "-key", "mport", media.port())
	testrun.Eventually(t, 5*time.Second, "the call is up", func() bool { h, _, _ := media.counts(); return h > 0 })
	s.stop()
	testrun.Eventually(t, 5*time.Second, "draining", func() bool { return s.ch.draining.Load() })
	s.send(t, request{Name: "while-draining", Method: "INVITE", User: testNumber, Headers: "Content-Type: application/sdp\n", Body: goodSDP, Expect: 503}).wait(t, 10*time.Second)
	select {
	case err := <-s.stopped:
		t.Fatalf("Run returned (%v) while a call was in progress", err)
	default:
	}
	before, _, _ := media.counts()
	caller.wait(t, 10*time.Second)
	if after, _, _ := media.counts(); after <= before {
		t.Errorf("hold audio stopped while draining")
	}
	select {
	case err := <-s.stopped:
		s.stopped <- err // for the cleanup
	case <-time.After(4 * time.Second):
		t.Fatal("Run did not return once the last call ended")
	}
	ct := s.callerContact(t, "03055530001")
	if ct == nil || ct.Outcome != outcomeAbandoned || ct.End.IsZero() {
		t.Errorf("contact %+v", ct)
	}
}
