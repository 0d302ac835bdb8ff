package router

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSetSettingsRanksAnew: new priority weights reorder the tasks that
// wait, at once.
func TestSetSettingsRanksAnew(t *testing.T) {
	cfg := basicConfig()
	h := newHarness(t, cfg)
	h.must(h.r.Enqueue(Task{ID: 1, Queue: "support", Channel: Email}))
	h.advance(time.Second)
	h.must(h.r.Enqueue(Task{ID: 2, Queue: "support", Channel: Email, ValueTier: 2}))
	h.advance(time.Second)
	h.must(h.r.Enqueue(Task{ID: 3, Queue: "support", Channel: Email, Repeat: true}))
	cfg.TierWeight, cfg.RepeatBoost = 10, 30
	h.must(h.r.SetSettings(cfg))
	h.must(h.r.SetPresence("anna", Available, ""))
	if order := h.acceptOffers(3, "anna"); !slices.Equal(order, []uint64{3, 2, 1}) {
		t.Errorf("order %v, want the repeat contact, the gold customer, then the first", order)
	}
}

// TestSetSettingsMaxWait: a changed max wait counts from when each task
// entered its queue; a task that has waited longer moves on at once, and
// one whose limit went up waits for the new one.
func TestSetSettingsMaxWait(t *testing.T) {
	cfg := basicConfig()
	cfg.Queues[0].MaxWait = 2 * time.Minute
	h := newHarness(t, cfg)
	h.enqueue(1, "support", Email)
	h.advance(time.Minute)
	h.enqueue(2, "support", Email)
	h.advance(30 * time.Second)

	cfg.Queues[0].MaxWait, cfg.Queues[0].OverflowQueue = time.Minute, "billing"
	from := len(h.journal.events)
	h.must(h.r.SetSettings(cfg))
	moved := h.taskEvents(1, from)
	if len(moved) == 0 || moved[0].Kind != TaskMoved || moved[0].Reason != "billing" || !moved[0].At.Equal(h.now) {
		t.Fatalf("task 1, waiting 90 s with max wait 1 min now: %+v", moved)
	}
	if ev := h.taskEvents(2, from); len(ev) != 0 {
		t.Fatalf("task 2, waiting 30 s: %+v", ev)
	}
	h.advance(30 * time.Second)
	if ev := h.taskEvents(2, from); len(ev) == 0 || ev[0].Kind != TaskMoved {
		t.Fatalf("task 2 after a minute: %+v", ev)
	}

	// Longer again: the task that entered billing waits for its limit.
	cfg.Queues[1].MaxWait = 10 * time.Minute
	h.must(h.r.SetSettings(cfg))
	h.enqueue(3, "billing", Email)
	from = len(h.journal.events)
	cfg.Queues[1].MaxWait = 20 * time.Minute
	h.must(h.r.SetSettings(cfg))
	h.advance(15 * time.Minute)
	if ev := h.taskEvents(3, from); len(ev) != 0 {
		t.Fatalf("task 3 after 15 min of 20: %+v", ev)
	}
	h.advance(5 * time.Minute)
	if ev := h.taskEvents(3, from); len(ev) != 1 || ev[0].Kind != TaskCanceled || ev[0].Reason != ReasonMaxWait {
		t.Fatalf("task 3 after 20 min: %+v", ev)
	}
	// No limit at all: nothing fires.
	h.enqueue(4, "billing", Email)
	cfg.Queues[1].MaxWait = 0
	h.must(h.r.SetSettings(cfg))
	from = len(h.journal.events)
	h.advance(time.Hour)
	if ev := h.taskEvents(4, from); len(ev) != 0 {
		t.Fatalf("task 4 without a limit: %+v", ev)
	}
}

// onACallWithMailWaiting: anna on a call, where calls block other
// channels, and mail 2 waiting for someone free.
func onACallWithMailWaiting(t *testing.T) (*harness, Config) {
	cfg := basicConfig()
	cfg.VoiceBlocksOthers = true
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Available, ""))
	h.enqueue(1, "support", Voice)
	h.acceptOffers(1, "anna")
	h.enqueue(2, "support", Email)
	h.noOffer()
	return h, cfg
}

// TestSetSettingsVoiceBlocking: an agent on a call gets the mail waiting
// for them as soon as calls no longer block other channels.
func TestSetSettingsVoiceBlocking(t *testing.T) {
	h, cfg := onACallWithMailWaiting(t)
	cfg.VoiceBlocksOthers = false
	h.must(h.r.SetSettings(cfg))
	h.wantOffer(2, "anna", "")
}

// TestSetSettingsVoiceBlockingOn: once calls block other channels, an
// agent on a call is offered no mail until the call ends; a mail taken
// before stays theirs.
func TestSetSettingsVoiceBlockingOn(t *testing.T) {
	cfg := basicConfig()
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Available, ""))
	h.enqueue(1, "support", Voice)
	h.acceptOffers(1, "anna")
	h.enqueue(2, "support", Email)
	h.wantOffer(2, "anna", "calls do not block mail yet")
	h.must(h.r.Accept(2, "anna"))
	cfg.VoiceBlocksOthers = true
	h.must(h.r.SetSettings(cfg))
	h.enqueue(3, "support", Email)
	h.noOffer()
	if held := h.r.Held()["anna"]; len(held) != 2 {
		t.Errorf("anna holds %+v", held)
	}
	h.must(h.r.End(1))
	h.wantOffer(3, "anna", "after the call")
}

// TestSetSettingsMaxWaitBeforeOffers: settings that shorten a max wait
// and free an agent at once (calls no longer block mail) move the task
// that waited too long on before anyone is offered it.
func TestSetSettingsMaxWaitBeforeOffers(t *testing.T) {
	h, cfg := onACallWithMailWaiting(t)
	h.advance(90 * time.Second)
	cfg.VoiceBlocksOthers = false
	cfg.Queues[0].MaxWait = time.Minute // no overflow queue: canceled
	h.must(h.r.SetSettings(cfg))
	h.noOffer()
	if ev := h.taskEvents(2, 0); ev[len(ev)-1].Kind != TaskCanceled || ev[len(ev)-1].Reason != ReasonMaxWait {
		t.Errorf("task 2: %v", kindsOf(ev))
	}
}

// TestSetSettingsStatsAndOffers: the service-level goal and the offer
// timeout apply from the change on.
func TestSetSettingsStatsAndOffers(t *testing.T) {
	cfg := basicConfig()
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("anna", Available, ""))
	cfg.Queues[0].ServiceLevelThreshold, cfg.Queues[0].ServiceLevelTarget = 5*time.Second, 0.95
	cfg.OfferTimeout = time.Minute
	h.must(h.r.SetSettings(cfg))
	h.enqueue(1, "support", Email)
	if o := h.takeOffer(); !o.Deadline.Equal(h.now.Add(time.Minute)) {
		t.Errorf("offer deadline %v, want a minute from now", o.Deadline)
	}
	h.advance(10 * time.Second)
	h.must(h.r.Accept(1, "anna"))
	st := h.r.Stats()[0]
	if st.ServiceLevelThreshold != 5*time.Second || st.ServiceLevelTarget != 0.95 || st.Today.Answered != 1 || st.Today.AnsweredInThreshold != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestSetSettingsNeedsRestart: a change to what the router is built on
// applies nothing, and says what changed.
func TestSetSettingsNeedsRestart(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"skills", func(c *Config) { c.Skills = append(c.Skills, "french") }, "skills changed"},
		{"queue added", func(c *Config) { c.Queues = append(c.Queues, QueueSpec{Name: "sales", Channels: []Channel{Voice}}) }, "the queues (added, removed or reordered) changed"},
		{"queues reordered", func(c *Config) { c.Queues[0], c.Queues[1] = c.Queues[1], c.Queues[0] }, "the queues (added, removed or reordered) changed"},
		{"skills of a queue", func(c *Config) { c.Queues[1].Skills = map[string]int{"billing": 2} }, "queue billing's skills, channels or widening changed"},
		{"channels", func(c *Config) { c.Queues[0].Channels = []Channel{Voice} }, "queue support's skills, channels or widening changed"},
		{"widening", func(c *Config) {
			c.Queues[0].Widening = []WideningStep{{After: time.Minute, Skills: map[string]int{"billing": 1}}}
		}, "queue support's skills, channels or widening changed"},
		{"two at once", func(c *Config) { c.Skills = c.Skills[:2]; c.Queues[0].Channels = nil }, "skills and queue support's skills, channels or widening changed"},
		{"a queue added and overflowed into", func(c *Config) {
			c.Queues = append(c.Queues, QueueSpec{Name: "sales", Channels: []Channel{Voice}})
			c.Queues[0].MaxWait, c.Queues[0].OverflowQueue = time.Minute, "sales"
		}, "the queues (added, removed or reordered) changed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, basicConfig())
			h.must(h.r.SetPresence("anna", Available, ""))
			cfg := basicConfig()
			cfg.TierWeight = 100
			tt.change(&cfg)
			err := h.r.SetSettings(cfg)
			if !errors.Is(err, ErrRestartNeeded) || !strings.HasSuffix(err.Error(), ": "+tt.want) {
				t.Fatalf("got %v, want ErrRestartNeeded: %s", err, tt.want)
			}
			// The tier weight did not apply either.
			h.enqueue(1, "support", Email)
			h.must(h.r.Enqueue(Task{ID: 2, Queue: "support", Channel: Email, ValueTier: 3}))
			h.acceptOffers(1, "anna")
			if p := h.r.tasks[2].prio; p != 0 {
				t.Errorf("task 2's priority %v: the new tier weight applied", p)
			}
		})
	}
	h := newHarness(t, basicConfig())
	cfg := basicConfig()
	cfg.Queues[0].OverflowQueue = "nowhere"
	if err := h.r.SetSettings(cfg); err == nil || errors.Is(err, ErrRestartNeeded) {
		t.Errorf("overflow into an undefined queue: %v", err)
	}
}

// maxWaitPassedDuringAnOffer: mail 1, offered to ben for a minute, has
// waited 15 s of its 10 s max wait in billing.
func maxWaitPassedDuringAnOffer(t *testing.T) (*harness, Config) {
	t.Helper()
	cfg := basicConfig()
	cfg.OfferTimeout = time.Minute
	cfg.Queues[1].MaxWait = 10 * time.Second
	h := newHarness(t, cfg)
	h.must(h.r.SetPresence("ben", Available, ""))
	h.enqueue(1, "billing", Email)
	h.takeOffer()
	h.advance(15 * time.Second)
	return h, cfg
}

// TestSetSettingsMaxWaitLengthenedDuringAnOffer: a task whose max wait
// passed while it was offered moves on when the offer ends; a reload that
// lengthens its max wait meanwhile lets it wait on instead.
func TestSetSettingsMaxWaitLengthenedDuringAnOffer(t *testing.T) {
	h, cfg := maxWaitPassedDuringAnOffer(t)
	cfg.Queues[1].MaxWait = time.Hour
	h.must(h.r.SetSettings(cfg))
	from := len(h.journal.events)
	h.must(h.r.Decline(1, "ben"))
	if ev := h.taskEvents(1, from); len(ev) != 1 || ev[0].Kind != OfferDeclined {
		t.Errorf("task 1 after the decline: %v, want it declined and waiting on", kindsOf(ev))
	}
}
