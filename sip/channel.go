package sip

import (
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"dirigent/journey"
	"dirigent/router"
	"dirigent/store"
)

//go:embed sounds/hold.wav
var defaultHold []byte

//go:embed sounds/prompt.wav
var defaultPrompt []byte

// Config is the voice channel's part of the configuration.
type Config struct {
	// Listen is served over UDP and TCP; TLSListen (optional) over TLS
	// with TLS.
	Listen    string
	TLSListen string
	TLS       *tls.Config
	Realm     string
	// MediaIP is announced in SDP; default: the listen address's IP, or
	// 127.0.0.1 when that is unspecified.
	MediaIP                string
	RTPPortMin, RTPPortMax int
	MinExpires, MaxExpires time.Duration
	// HoldAudio is a WAV file (8 kHz mono 16-bit); empty: the shipped one.
	HoldAudio      string
	QueueHoldAudio map[string]string
	// DeskURL, when set, goes to the agent's phone as Call-Info.
	DeskURL string
	// AvailableOnRegister: an agent's first registered phone makes an
	// offline agent available, its last phone going makes it offline.
	AvailableOnRegister bool
	Users               []User
	Trunks              []Trunk
	Numbers             []Number
	Menus               []Menu
}

// User is an agent's SIP account.
type User struct{ User, Password, Agent string }

// Trunk is a peer calls are taken from: by source address, digest
// credentials, or both.
type Trunk struct {
	Name           string
	CIDRs          []string
	User, Password string
}

// Number is a dialled number: its calls go to an IVR menu or a queue.
type Number struct{ Number, Queue, Intent, IVR string }

// Menu is an IVR menu.
type Menu struct {
	Name    string
	Prompt  string
	Timeout time.Duration
	Default string
	Digits  map[string]string // key → queue
}

// Deps are what the voice channel needs from the daemon.
type Deps struct {
	Logger       *slog.Logger
	Store        *store.Store
	Journey      *journey.Journey
	Router       *router.Router
	Registerer   prometheus.Registerer
	DrainTimeout time.Duration
	Now          func() time.Time
	// OnMessage takes a SIP MESSAGE into the message channel, durably
	// before it returns; nil: MESSAGE is answered 405.
	OnMessage func(context.Context, Message) error
}

// Channel is the voice channel.
type Channel struct {
	cfg     Config
	deps    Deps
	metrics *metrics

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client // UDP, from the listening socket
	tcpCl  *sipgo.Client
	udp    *net.UDPConn
	tcp    *net.TCPListener
	tls    net.Listener

	nonces    *nonces
	registrar *registrar
	ports     *ports
	pacer     *pacer
	mediaIP   net.IP
	host      string
	port      int

	hold      *sound
	queueHold map[string]*sound
	prompts   map[string]*sound // menu → prompt
	numbers   map[string]Number // normalised number → route
	menus     map[string]*Menu
	trunks    atomic.Pointer[[]trunk] // replaced whole by SetAccounts

	mu       sync.Mutex
	byCallID map[string]*call // caller's and agents' Call-IDs → call
	byTask   map[uint64]*call

	draining atomic.Bool
	active   atomic.Int64 // calls in progress
	stop     chan struct{}
	closed   sync.Once
}

type trunk struct {
	Trunk
	nets []*net.IPNet
}

// New checks cfg, loads the audio and binds the listeners.
func New(cfg Config, deps Deps) (_ *Channel, err error) {
	if deps.Logger == nil || deps.Store == nil || deps.Journey == nil || deps.Router == nil || deps.Registerer == nil {
		return nil, errors.New("sip: Logger, Store, Journey, Router and Registerer are required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if cfg.Realm == "" {
		cfg.Realm = "dirigent"
	}
	if cfg.MaxExpires <= 0 {
		cfg.MaxExpires = time.Hour
	}
	if cfg.MinExpires <= 0 {
		cfg.MinExpires = time.Minute
	}
	if cfg.RTPPortMin == 0 && cfg.RTPPortMax == 0 {
		cfg.RTPPortMin, cfg.RTPPortMax = 16384, 32767
	}
	c := &Channel{
		cfg: cfg, deps: deps, nonces: newNonces(deps.Now), pacer: newPacer(),
		queueHold: map[string]*sound{}, prompts: map[string]*sound{}, numbers: map[string]Number{}, menus: map[string]*Menu{},
		byCallID: map[string]*call{}, byTask: map[uint64]*call{}, stop: make(chan struct{}),
	}
	if c.metrics, err = newMetrics(deps.Registerer); err != nil {
		return nil, err
	}
	if err := c.loadSounds(); err != nil {
		return nil, err
	}
	norm := deps.Journey.Normalizer()
	for _, n := range cfg.Numbers {
		v, err := norm.Phone(n.Number)
		if err != nil {
			return nil, fmt.Errorf("sip: number %q: %w", n.Number, err)
		}
		c.numbers[v] = n
	}
	for i := range cfg.Menus {
		c.menus[cfg.Menus[i].Name] = &cfg.Menus[i]
	}
	trunks, err := parseTrunks(cfg.Trunks)
	if err != nil {
		return nil, err
	}
	c.trunks.Store(&trunks)
	if c.registrar, err = newRegistrar(c); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := c.bind(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Channel) now() time.Time { return c.deps.Now() }

func (c *Channel) loadSounds() error {
	load := func(path string, def []byte) (*sound, error) {
		data := def
		if path != "" {
			var err error
			if data, err = os.ReadFile(path); err != nil {
				return nil, fmt.Errorf("sip: %w", err)
			}
		}
		s, err := parseWAV(data)
		if err != nil {
			return nil, fmt.Errorf("sip: audio %s: %w", path, err)
		}
		return s, nil
	}
	var err error
	if c.hold, err = load(c.cfg.HoldAudio, defaultHold); err != nil {
		return err
	}
	for q, path := range c.cfg.QueueHoldAudio {
		if c.queueHold[q], err = load(path, nil); err != nil {
			return err
		}
	}
	for _, m := range c.cfg.Menus {
		if c.prompts[m.Name], err = load(m.Prompt, defaultPrompt); err != nil {
			return err
		}
	}
	return nil
}

// bind opens the UDP, TCP (same port) and optional TLS listeners and the
// sipgo user agent on them.
func (c *Channel) bind() error {
	host, portStr, err := net.SplitHostPort(c.cfg.Listen)
	if err != nil {
		return fmt.Errorf("sip: listen %q: %w", c.cfg.Listen, err)
	}
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("dirigent"),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerReadFilter(c.screen)),
	)
	if err != nil {
		return err
	}
	c.ua = ua
	// Port 0 (tests) lets the kernel choose the UDP port; TCP then takes
	// the same number, retried when that one happens to be taken.
	for attempt := 0; ; attempt++ {
		c.udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(host), Port: atoi(portStr)})
		if err != nil {
			return fmt.Errorf("sip: %w", err)
		}
		port := c.udp.LocalAddr().(*net.UDPAddr).Port
		c.tcp, err = net.ListenTCP("tcp", &net.TCPAddr{IP: net.ParseIP(host), Port: port})
		if err == nil {
			c.port = port
			break
		}
		c.udp.Close()
		if atoi(portStr) != 0 || attempt > 10 {
			return fmt.Errorf("sip: %w", err)
		}
	}
	c.enlargeReadBuffer()
	if c.cfg.TLSListen != "" {
		if c.tls, err = tls.Listen("tcp", c.cfg.TLSListen, c.cfg.TLS); err != nil {
			return fmt.Errorf("sip: %w", err)
		}
	}
	ip := net.ParseIP(host)
	c.mediaIP = net.ParseIP(c.cfg.MediaIP)
	if c.mediaIP == nil {
		c.mediaIP = ip
		if ip == nil || ip.IsUnspecified() {
			c.mediaIP = net.IPv4(127, 0, 0, 1)
		}
	}
	c.host = c.mediaIP.String()
	c.ports = &ports{ip: ip, min: c.cfg.RTPPortMin, max: c.cfg.RTPPortMax}
	if c.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(c.deps.Logger)); err != nil {
		return err
	}
	hostPort := net.JoinHostPort(c.host, strconv.Itoa(c.port))
	if c.client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(c.deps.Logger), sipgo.WithClientAddr(hostPort),
		sipgo.WithClientConnectionAddr(c.udp.LocalAddr().String())); err != nil {
		return err
	}
	if c.tcpCl, err = sipgo.NewClient(ua, sipgo.WithClientLogger(c.deps.Logger), sipgo.WithClientAddr(hostPort)); err != nil {
		return err
	}
	c.srv.OnRegister(c.onRegister)
	c.srv.OnOptions(c.onOptions)
	c.srv.OnInvite(c.onInvite)
	c.srv.OnAck(c.onAck)
	c.srv.OnBye(c.onBye)
	c.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		// A CANCEL that matched no INVITE transaction (sipgo handles the
		// ones that do).
		tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
	})
	c.srv.OnInfo(c.onInfo)
	if c.deps.OnMessage != nil {
		c.srv.OnMessage(c.onMessage)
	}
	return nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// udpReadBuffer is the SIP socket's receive buffer. One goroutine
// (sipgo's) reads every datagram; in bursts of calls the kernel's default
// buffer (208 KB, some 150 datagrams) filled before it caught up, and
// what was dropped there was heard of again only through retransmissions
// half a second or more later: an agent phone's 180 and 200 lost made
// dirigent send its INVITE again after the phone had answered, which
// bench/sip-calls.sh's sipp agent takes for an error, dropping the call.
// At 1,200 calls a second the queue reached 0.5 MB there.
const udpReadBuffer = 4 << 20

// enlargeReadBuffer asks for udpReadBuffer. The kernel grants at most
// net.core.rmem_max and tells only when asked afterwards, so a smaller
// buffer is logged for the operator to raise that limit.
func (c *Channel) enlargeReadBuffer() {
	if err := c.udp.SetReadBuffer(udpReadBuffer); err != nil {
		c.deps.Logger.Warn("SIP receive buffer not enlarged", "err", err)
		return
	}
	raw, err := c.udp.SyscallConn()
	if err != nil {
		return
	}
	var got int
	raw.Control(func(fd uintptr) { got, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
	// Linux reports twice what it granted, half being its bookkeeping.
	if got/2 < udpReadBuffer {
		c.deps.Logger.Warn("SIP receive buffer smaller than wanted: bursts of calls may lose requests; raise the sysctl net.core.rmem_max",
			"bytes", got/2, "wanted", udpReadBuffer)
	}
}

var parserPool = sync.Pool{New: func() any { return sip.NewParser() }}

// screen is sipgo's read filter: see screenDatagram.
func (c *Channel) screen(info sip.TransportReadProps, data []byte) ([]byte, error) {
	if info.Transport != "UDP" && info.Transport != "udp" {
		return data, nil
	}
	p := parserPool.Get().(*sip.Parser)
	reply, pass := screenDatagram(data, p)
	parserPool.Put(p)
	if pass {
		return data, nil
	}
	c.metrics.rejected.WithLabelValues("malformed").Inc()
	if reply != nil && c.udp != nil {
		c.udp.WriteTo(reply, info.RemoteAddr)
	}
	return nil, nil
}

func parseTrunks(cfg []Trunk) ([]trunk, error) {
	var trunks []trunk
	for _, t := range cfg {
		tr := trunk{Trunk: t}
		for _, s := range t.CIDRs {
			_, n, err := net.ParseCIDR(s)
			if err != nil {
				ip := net.ParseIP(s)
				if ip == nil {
					return nil, fmt.Errorf("sip: trunk %s: %q is not an address or CIDR", t.Name, s)
				}
				n = &net.IPNet{IP: ip, Mask: net.CIDRMask(len(ip)*8, len(ip)*8)}
			}
			tr.nets = append(tr.nets, n)
		}
		trunks = append(trunks, tr)
	}
	return trunks, nil
}

// SetAccounts puts a reload's agents' accounts and trunks in force; with
// a trunk it cannot read, it changes nothing. Calls in progress go on.
// The phones registered to an account that is removed, given to another
// agent or has a new password are rung no more until they register
// again.
func (c *Channel) SetAccounts(ctx context.Context, users []User, trunks []Trunk) error {
	parsed, err := parseTrunks(trunks)
	if err != nil {
		return err
	}
	c.trunks.Store(&parsed)
	c.registrar.setUsers(ctx, users)
	return nil
}

// Addr is the bound UDP (and TCP) address.
func (c *Channel) Addr() *net.UDPAddr { return c.udp.LocalAddr().(*net.UDPAddr) }

// TLSAddr is the bound TLS address; nil without TLS.
func (c *Channel) TLSAddr() net.Addr {
	if c.tls == nil {
		return nil
	}
	return c.tls.Addr()
}

// Close releases the listeners; safe after a partial New and after Run.
func (c *Channel) Close() error {
	c.closed.Do(func() {
		close(c.stop)
		for _, l := range []interface{ Close() error }{c.udp, c.tcp, c.tls} {
			if l != nil && !isNil(l) {
				l.Close()
			}
		}
		if c.ua != nil {
			c.ua.Close()
		}
	})
	return nil
}

func isNil(l interface{ Close() error }) bool {
	switch v := l.(type) {
	case *net.UDPConn:
		return v == nil
	case *net.TCPListener:
		return v == nil
	}
	return l == nil
}

// Run serves SIP until ctx ends, then drains: new INVITEs get 503 while
// calls in progress may finish until the drain deadline; calls still up
// then are hung up.
func (c *Channel) Run(ctx context.Context) error {
	errc := make(chan error, 3)
	go func() { errc <- c.srv.ServeUDP(c.udp) }()
	go func() { errc <- c.srv.ServeTCP(c.tcp) }()
	if c.tls != nil {
		go func() { errc <- c.srv.ServeTLS(c.tls) }()
	}
	go c.pacer.run(c.stop, c.deps.Logger, c.metrics)
	if c.cfg.AvailableOnRegister {
		for _, agent := range c.registrar.agents() {
			c.registrar.presence(agent)
		}
	}
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			c.drain()
			c.Close()
			return nil
		case err := <-errc:
			select {
			case <-c.stop:
				return nil
			default:
			}
			c.Close()
			return fmt.Errorf("sip: listener: %w", err)
		case <-tick.C:
			c.registrar.expire(ctx)
			c.nonces.prune()
		}
	}
}

// drain refuses new calls and waits for those in progress, until the
// drain timeout; then it hangs up the rest.
func (c *Channel) drain() {
	c.draining.Store(true)
	timeout := c.deps.DrainTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if c.waitIdle(timeout) {
		return
	}
	c.mu.Lock()
	var open []*call
	for _, cl := range c.byTask {
		open = append(open, cl)
	}
	c.mu.Unlock()
	for _, cl := range open {
		cl.hangup("drain")
	}
	if !c.waitIdle(5 * time.Second) {
		c.deps.Logger.Warn("calls still open after hanging up", "calls", c.active.Load())
	}
}

// waitIdle waits up to d for the calls in progress to end.
func (c *Channel) waitIdle(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for c.active.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// OnOffer rings the offered agent's phones for a voice offer; the
// router calls it (through the daemon) without its lock held, so the
// ringing runs on its own goroutine.
func (c *Channel) OnOffer(o router.Offer) {
	if o.Channel != router.Voice {
		return
	}
	c.mu.Lock()
	cl := c.byTask[o.TaskID]
	c.mu.Unlock()
	if cl == nil {
		// Not a call of this process (a restart canceled it already).
		go c.deps.Router.Decline(o.TaskID, o.Agent)
		return
	}
	go cl.ring(o)
}

// OnRevoke stops ringing for an offer that ended without an answer, on
// its own goroutine: the router may deliver it to an agent's answer
// that holds the call's lock while it calls Router.Accept (an offer
// answered as its deadline passed).
func (c *Channel) OnRevoke(o router.Offer) {
	if o.Channel != router.Voice {
		return
	}
	c.mu.Lock()
	cl := c.byTask[o.TaskID]
	c.mu.Unlock()
	if cl != nil {
		go cl.revoke(o)
	}
}

func (c *Channel) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO"))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	tx.Respond(res)
}

// TaskEvent follows the router's journal for the calls' tasks: a call
// the router gives up on (max wait without an overflow queue) is hung
// up, and a call moved to an overflow queue is recorded there. The
// router calls it with its lock held, so nothing here calls back or
// waits for a call's lock.
func (c *Channel) TaskEvent(e router.Event) {
	if e.Channel != router.Voice || (e.Kind != router.TaskCanceled && e.Kind != router.TaskMoved) {
		return
	}
	c.mu.Lock()
	cl := c.byTask[e.TaskID]
	c.mu.Unlock()
	if cl == nil {
		return
	}
	switch e.Kind {
	case router.TaskMoved:
		// Not the call's lock: an agent's answer holds it while it calls
		// Router.Accept.
		queue := e.Reason
		cl.movedTo.Store(&queue)
	case router.TaskCanceled:
		if e.Reason != router.ReasonAbandoned {
			go cl.end(outcomeCanceled, "dirigent")
		}
	}
}
