package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// latencies collects delivery times of one direction.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkChatSessions holds DIRIGENT_CHAT_SESSIONS (2,000) chats open
// over loopback WebSockets, each customer writing one message every 5 s
// for DIRIGENT_CHAT_SECONDS (60), and an agent answering each message
// through Send. It reports the delivery latency of both directions: from
// the customer's write to the agent's callback (stored before), and from
// Send to the customer's read. The customers run in the same process, on
// the same two cores, as the channel.
func BenchmarkChatSessions(b *testing.B) {
	sessions := envInt("DIRIGENT_CHAT_SESSIONS", 2000)
	seconds := envInt("DIRIGENT_CHAT_SECONDS", 60)
	// Latencies of messages sent during the warm-up (connecting every
	// session, each one's first message making its contact and task)
	// are kept apart from those of the sessions held open.
	warmup := time.Duration(envInt("DIRIGENT_CHAT_WARMUP_SECONDS", 10)) * time.Second
	var in, out, warmIn, warmOut latencies
	var measureFrom atomic.Int64
	measureFrom.Store(time.Now().Add(time.Hour).UnixNano())
	sample := func(sent int64, main, warm *latencies) {
		if sent >= measureFrom.Load() {
			main.add(time.Since(time.Unix(0, sent)))
		} else {
			warm.add(time.Since(time.Unix(0, sent)))
		}
	}
	var errs atomic.Int64
	replies := make(chan Event, 100000)
	s := startSite(b, func(c *Config, d *Deps) {
		c.MaxSessionsPerIP = sessions + 10
		c.MessagesPerMinute = 60
		c.MaxMessageBytes = 1024
		d.OnCustomer = func(e Event) {
			if e.Kind != "message" {
				return
			}
			sent, err := strconv.ParseInt(strings.TrimPrefix(e.Text, "t="), 10, 64)
			if err == nil {
				sample(sent, &in, &warmIn)
			}
			select {
			case replies <- e:
			default:
				errs.Add(1)
			}
		}
	})
	agents := sync.WaitGroup{}
	for range 8 {
		agents.Go(func() {
			for e := range replies {
				if err := s.ch.Send(context.Background(), e.ConversationID, "anna", "t="+strconv.FormatInt(time.Now().UnixNano(), 10)); err != nil {
					errs.Add(1)
				}
			}
		})
	}
	defer func() { close(replies); agents.Wait() }()

	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), warmup+time.Duration(seconds)*time.Second+time.Minute)
		var wg sync.WaitGroup
		var connected atomic.Int64
		start := time.Now()
		measureFrom.Store(start.Add(warmup).UnixNano())
		stop := start.Add(warmup + time.Duration(seconds)*time.Second)
		for i := range sessions {
			wg.Go(func() {
				ws, _, err := websocket.Dial(ctx, "ws://"+s.ch.Addr().String()+"/ws", nil)
				if err != nil {
					errs.Add(1)
					return
				}
				defer ws.CloseNow()
				hello, _ := json.Marshal(map[string]any{"type": "hello", "lang": "en"})
				if ws.Write(ctx, websocket.MessageText, hello) != nil {
					errs.Add(1)
					return
				}
				connected.Add(1)
				go func() {
					for {
						_, data, err := ws.Read(ctx)
						if err != nil {
							return
						}
						var f ServerFrame
						if json.Unmarshal(data, &f) == nil && f.Type == FrameMessage && f.From == "agent" {
							if sent, err := strconv.ParseInt(strings.TrimPrefix(f.Text, "t="), 10, 64); err == nil {
								sample(sent, &out, &warmOut)
							}
						}
					}
				}()
				// Spread the customers over the 5 s period.
				next := time.Now().Add(time.Duration(rand.Int64N(int64(5 * time.Second))))
				for n := 0; ; n++ {
					time.Sleep(time.Until(next))
					if time.Now().After(stop) {
						return
					}
					msg, _ := json.Marshal(map[string]any{"type": "message", "id": fmt.Sprintf("m%d", n), "text": "t=" + strconv.FormatInt(time.Now().UnixNano(), 10)})
					if ws.Write(ctx, websocket.MessageText, msg) != nil {
						errs.Add(1)
						return
					}
					next = next.Add(5 * time.Second)
				}
			})
			if i%100 == 99 {
				time.Sleep(10 * time.Millisecond) // a gentle ramp, not a connection storm
			}
		}
		wg.Wait()
		cancel()
		b.Logf("%d sessions connected; measured after a %v warm-up: %d messages in, %d answers out; %d errors; %.0f s in all",
			connected.Load(), warmup, in.count(), out.count(), errs.Load(), time.Since(start).Seconds())
	}
	b.StopTimer()
	if mfs, err := s.storeReg.Gather(); err == nil {
		for _, mf := range mfs {
			if h := mf.GetMetric(); len(h) == 1 && h[0].GetHistogram() != nil && (strings.HasSuffix(mf.GetName(), "commit_seconds") || strings.HasSuffix(mf.GetName(), "commit_writes") || strings.HasSuffix(mf.GetName(), "write_seconds")) {
				hist := h[0].GetHistogram()
				var line []string
				for _, bk := range hist.GetBucket() {
					line = append(line, fmt.Sprintf("≤%g:%d", bk.GetUpperBound(), bk.GetCumulativeCount()))
				}
				b.Logf("%s: n=%d mean=%.4f %s", mf.GetName(), hist.GetSampleCount(), hist.GetSampleSum()/float64(hist.GetSampleCount()), strings.Join(line, " "))
			}
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(warmIn.quantile(0.99)), "warmup-in-p99-ms")
	b.ReportMetric(ms(warmOut.quantile(0.99)), "warmup-out-p99-ms")
	b.ReportMetric(ms(in.quantile(0.5)), "in-p50-ms")
	b.ReportMetric(ms(in.quantile(0.99)), "in-p99-ms")
	b.ReportMetric(ms(out.quantile(0.5)), "out-p50-ms")
	b.ReportMetric(ms(out.quantile(0.99)), "out-p99-ms")
	b.ReportMetric(float64(in.count()), "messages-in")
	b.ReportMetric(float64(out.count()), "answers-out")
	b.ReportMetric(float64(errs.Load()), "errors")
}

// BenchmarkDiskSyncReference measures what every durable chat message
// waits for at least once: a write and fdatasync on the disk of the test
// store (16 KiB at a time, every 2 ms, for DIRIGENT_CHAT_SECONDS). It is
// the floor under BenchmarkChatSessions' latency on this machine.
func BenchmarkDiskSyncReference(b *testing.B) {
	seconds := envInt("DIRIGENT_CHAT_SECONDS", 60)
	f, err := os.Create(b.TempDir() + "/sync")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 16<<10)
	var l latencies
	for range b.N {
		end := time.Now().Add(time.Duration(seconds) * time.Second)
		for i := 0; time.Now().Before(end); i++ {
			t := time.Now()
			if _, err := f.WriteAt(buf, int64(i%1000)*int64(len(buf))); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			l.add(time.Since(t))
			time.Sleep(2 * time.Millisecond)
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(l.quantile(0.5)), "sync-p50-ms")
	b.ReportMetric(ms(l.quantile(0.99)), "sync-p99-ms")
	b.ReportMetric(ms(l.quantile(0.999)), "sync-p999-ms")
	b.ReportMetric(ms(l.quantile(1)), "sync-max-ms")
}
