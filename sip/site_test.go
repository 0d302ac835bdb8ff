package sip

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"dirigent/internal/testpeer"
	"dirigent/internal/testrun"
	"dirigent/internal/testsite"
	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

// site is a running voice channel with the parts it works with.
type site struct {
	ch     *Channel
	st     *store.Store
	j      *journey.Journey
	router *router.Router
	reg    *prometheus.Registry
	dir    string
	errors *errorLog // what the site logged at level ERROR
	// stop ends the channel's Run (a daemon's stop); stopped then gets
	// what Run returned, once.
	stop    context.CancelFunc
	stopped chan error
}

const (
	testNumber = "+49301234500"
	testUser   = "anna"
	testPass   = "geheim"
)

// testConfig is a site with one agent (anna, SIP user anna), one voice
// queue, the loopback as trunk and one dialled number.
func testConfig() Config {
	return Config{
		Listen: "127.0.0.1:0", Realm: "dirigent.test",
		RTPPortMin: 20000 + 2*(os.Getpid()%2000), RTPPortMax: 30000 + 2*(os.Getpid()%2000),
		MinExpires: time.Second, MaxExpires: time.Hour,
		DeskURL: "http://127.0.0.1:8080",
		Users:   []User{{User: testUser, Password: testPass, Agent: "anna"}},
		Trunks:  []Trunk{{Name: "pbx", CIDRs: []string{"127.0.0.0/8"}}},
		Numbers: []Number{{Number: testNumber, Queue: "support"}, {Number: "+49301234502", Queue: "short"}},
	}
}

func startSite(t testing.TB, cfg Config, storePath string) *site {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	errs := &errorLog{}
	logger = slog.New(errorTee{logger.Handler(), errs})
	ts := testsite.New(t, testsite.Options{
		Logger: logger, StorePath: storePath,
		Intents: []journey.IntentRule{{Name: "billing", Queue: "billing", Dialled: []string{"+49301234599"}}},
		Router: router.Config{
			Skills:       []string{"support"},
			OfferTimeout: 5 * time.Second,
			Agents:       []router.AgentSpec{{ID: "anna", Skills: map[string]int{"support": 3}, Capacity: [3]int{1, 3, 2}}},
			Queues: []router.QueueSpec{
				{Name: "support", Skills: map[string]int{"support": 1}, Channels: []router.Channel{router.Voice}, WrapUp: time.Minute},
				{Name: "billing", Skills: map[string]int{"support": 1}, Channels: []router.Channel{router.Voice}},
				{Name: "short", Skills: map[string]int{"support": 1}, Channels: []router.Channel{router.Voice}, MaxWait: time.Second},
			},
		},
	})
	reg := prometheus.NewRegistry()
	ch, err := New(cfg, Deps{Logger: logger, Store: ts.Store, Journey: ts.Journey, Router: ts.Router, Registerer: reg, DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ts.Wire(testsite.Hooks{Record: ch.TaskEvent, OnOffer: ch.OnOffer, OnRevoke: ch.OnRevoke})
	testrun.Start(t, ts.Router.Run)
	ctx, cancel := context.WithCancel(context.Background())
	s := &site{ch: ch, st: ts.Store, j: ts.Journey, router: ts.Router, reg: reg, dir: t.TempDir(), errors: errs, stopped: make(chan error, 1)}
	go func() { s.stopped <- ch.Run(ctx) }()
	s.stop = cancel
	t.Cleanup(func() {
		cancel()
		if err := <-s.stopped; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

// errorLog keeps the messages a site logged at level ERROR, for tests of
// what must pass quietly.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

// errorTee hands records on to next and keeps the errors in log.
type errorTee struct {
	next slog.Handler
	log  *errorLog
}

func (h errorTee) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.next.Enabled(ctx, l)
}

func (h errorTee) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.log.mu.Lock()
		h.log.msgs = append(h.log.msgs, r.Message)
		h.log.mu.Unlock()
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h errorTee) WithAttrs(as []slog.Attr) slog.Handler {
	return errorTee{h.next.WithAttrs(as), h.log}
}

func (h errorTee) WithGroup(name string) slog.Handler {
	return errorTee{h.next.WithGroup(name), h.log}
}

// freePort returns a UDP port free at the moment on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	for {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		// sipp's media also takes port+2 (RTCP echo): keep clear of ours.
		if p < 65000 {
			return p
		}
	}
}

// sipp runs the real sipp against the site with a scenario from
// testdata; it is killed when the test ends.
type sippRun struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

func (s *site) sipp(t testing.TB, scenario string, args ...string) *sippRun {
	t.Helper()
	bin := testpeer.Require(t, "sipp", "sip-tester")
	path := scenario
	if !filepath.IsAbs(path) {
		path = filepath.Join("testdata", scenario)
	}
	full := append([]string{"127.0.0.1:" + strconv.Itoa(s.ch.Addr().Port), "-sf", path,
		"-i", "127.0.0.1", "-nostdin", "-trace_err", "-error_file", filepath.Join(s.dir, filepath.Base(scenario)+".errors.log")}, args...)
	r := &sippRun{cmd: exec.Command(bin, full...), done: make(chan error, 1)}
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
		if t.Failed() {
			t.Logf("sipp %s:\n%s", scenario, r.tail())
		}
	})
	return r
}

// wait waits for sipp to end and fails the test unless it passed.
func (r *sippRun) wait(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			t.Fatalf("sipp: %v\n%s", err, r.tail())
		}
	case <-time.After(d):
		t.Fatalf("sipp still running after %s\n%s", d, r.tail())
	}
}

func (r *sippRun) tail() string {
	b := r.out.Bytes()
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// counter reads a metric's value from the site's registry.
func (s *site) counter(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

// callerContact returns the voice contact of the caller with number.
func (s *site) callerContact(t *testing.T, number string) *store.Contact {
	t.Helper()
	cust, _, err := s.j.Identify(context.Background(), journey.KindPhone, number, "")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := s.st.Journey(cust.ID, time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Contact != nil && e.Contact.Channel == "voice" {
			return e.Contact
		}
	}
	return nil
}

func (s *site) String() string { return fmt.Sprintf("site on %s", s.ch.Addr()) }
