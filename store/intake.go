package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// The intake log makes accepting mail cheap: a message is appended to a
// plain file and fdatasynced once per group of concurrent senders (bbolt
// needs two fsyncs and more pages per commit), and only then
// acknowledged. A background applier moves logged messages into bbolt in
// large batches and records how far it got in the same transaction, so
// each message is applied exactly once, also across kill -9. Files are
// intake.<generation>.log; a full file is left for the applier, which
// deletes it when done. The files sit beside the store file and are named
// after it (dirigent.db.intake.<generation>.log).

const (
	intakeRotateBytes = 64 << 20
	// A generation that has not grown for this long is closed, so that
	// its file, once applied, is deleted: raw mail of an erased customer
	// must not linger in a quiet site's log.
	intakeIdleRotate = time.Minute
	intakeHeader     = 8 // payload length, CRC-32C of the payload
	intakeKeepBuffer = 1 << 20
	intakeMaxGather  = 5 * time.Millisecond
	// The file is grown in zero-filled steps of this size ahead of its
	// records.
	intakeGrow = 1 << 20
	// The applier waits this long, or for this many records, before it
	// applies what was synced.
	intakeGather        = 20 * time.Millisecond
	intakeGatherRecords = 500
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	// intakeZeros is a page of them, written a page at a time (write).
	intakeZeros  = make([]byte, os.Getpagesize())
	keyIntakePos = []byte("intake_applied") // generation, offset: 16 bytes
)

type intake struct {
	base   string // the store file
	s      *Store
	rotate int64         // a generation is closed once it holds this many bytes
	idle   time.Duration // or once it has not grown for this long
	writes chan *intakeWrite
	apply  chan struct{}
	done   chan struct{}
	// Written only by the writer goroutine.
	f      *os.File
	gen    uint64
	size   int64 // the records' end
	zeroed int64 // the file's end, zero-filled after size
	// Told to the applier: the newest generation and how far it is synced.
	mu       sync.Mutex
	syncGen  uint64
	syncSize int64
	// applyMu keeps the applier and Flush from applying a record twice.
	applyMu sync.Mutex
	// backlog counts records synced but not yet applied, for the metric.
	backlog atomic.Int64
	// stored is told the IDs of messages once they are applied to bbolt.
	stored  atomic.Pointer[func([]uint64)]
	applied chan struct{} // closed when applyLoop has ended
}

type intakeWrite struct {
	rec  []byte
	done chan error
}

func intakeName(base string, gen uint64) string {
	return fmt.Sprintf("%s.intake.%d.log", base, gen)
}

// intakeFiles lists the generations present for the store file base, in
// order.
func intakeFiles(base string) ([]uint64, error) {
	names, err := filepath.Glob(base + ".intake.*.log")
	if err != nil {
		return nil, err
	}
	var gens []uint64
	for _, n := range names {
		g, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(n, base+".intake."), ".log"), 10, 64)
		if err == nil {
			gens = append(gens, g)
		}
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i] < gens[j] })
	return gens, nil
}

// openIntake replays what an earlier process logged but did not apply,
// then starts a new generation for this one.
func openIntake(s *Store, idle time.Duration) (*intake, error) {
	if idle <= 0 {
		idle = intakeIdleRotate
	}
	in := &intake{base: s.path, s: s, rotate: intakeRotateBytes, idle: idle, writes: make(chan *intakeWrite), apply: make(chan struct{}, 1), done: make(chan struct{}), applied: make(chan struct{})}
	if err := in.replay(); err != nil {
		return nil, err
	}
	gens, err := intakeFiles(in.base)
	if err != nil {
		return nil, err
	}
	pos, err := in.position()
	if err != nil {
		return nil, err
	}
	// A new generation for this process, after every file left and after
	// the applied position, so that nothing new is taken as applied.
	in.gen = pos.gen + 1
	if len(gens) > 0 && gens[len(gens)-1] >= pos.gen {
		in.gen = gens[len(gens)-1] + 1
	}
	in.backlog.Store(0)
	if err := in.openGen(); err != nil {
		return nil, err
	}
	// Done with the earlier generations: their files go.
	if err := in.applyUpTo(in.gen, 0); err != nil {
		return nil, err
	}
	go in.writeLoop()
	go in.applyLoop()
	return in, nil
}

func (in *intake) openGen() error {
	f, err := os.OpenFile(intakeName(in.base, in.gen), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("intake log: %w", err)
	}
	in.f, in.size, in.zeroed = f, 0, 0
	in.mu.Lock()
	in.syncGen, in.syncSize = in.gen, 0
	in.mu.Unlock()
	return nil
}

// encode frames a message as one log record.
func encodeIntake(m *InboundMail, raw []byte) ([]byte, error) {
	meta, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	rec := make([]byte, intakeHeader+4+len(meta)+len(raw))
	payload := rec[intakeHeader:]
	binary.BigEndian.PutUint32(payload, uint32(len(meta)))
	copy(payload[4:], meta)
	copy(payload[4+len(meta):], raw)
	binary.BigEndian.PutUint32(rec, uint32(len(payload)))
	binary.BigEndian.PutUint32(rec[4:], crc32.Checksum(payload, castagnoli))
	return rec, nil
}

// readIntake reads the record at r; io.EOF at a clean end, errTorn for a
// partial or damaged record (the tail of a write cut off by a crash) and
// for the zeros after the last record.
var errTorn = errors.New("torn intake record")

func readIntake(r *bufio.Reader) (*InboundMail, []byte, int64, error) {
	var h [intakeHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, 0, io.EOF
		}
		return nil, nil, 0, errTorn
	}
	n := binary.BigEndian.Uint32(h[:])
	if n < 4 || n > 1<<30 {
		return nil, nil, 0, errTorn
	}
	// Grown as bytes arrive: a damaged length costs no more memory than
	// the file holds.
	var buf bytes.Buffer
	if got, _ := io.CopyN(&buf, r, int64(n)); got != int64(n) {
		return nil, nil, 0, errTorn
	}
	payload := buf.Bytes()
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(h[4:]) {
		return nil, nil, 0, errTorn
	}
	ml := binary.BigEndian.Uint32(payload)
	if int(ml) > len(payload)-4 {
		return nil, nil, 0, errTorn
	}
	var m InboundMail
	if err := json.Unmarshal(payload[4:4+ml], &m); err != nil {
		return nil, nil, 0, errTorn
	}
	return &m, payload[4+ml:], int64(intakeHeader) + int64(n), nil
}

// Accept appends a message to the intake log and returns once it is
// fdatasynced: from then on it survives kill -9 and may be acknowledged.
// It reaches the store (and gets its ID) moments later.
func (s *Store) Accept(ctx context.Context, m *InboundMail, raw []byte) error {
	rec, err := encodeIntake(m, raw)
	if err != nil {
		return err
	}
	w := &intakeWrite{rec: rec, done: make(chan error, 1)}
	select {
	case s.intake.writes <- w:
	case <-s.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-w.done
}

// writeLoop appends everything queued in one write, fdatasyncs once,
// then answers every writer: one sync per group of senders. When the
// last group had company, senders are many, and the next group waits
// up to half the last sync's time for more of them: under a stream of
// mail that saves a quarter of the syncs (each costs the kernel a device
// round trip), and more mail is accepted. The wait is at most
// intakeMaxGather, however slow a sync was, and a lone sender waits at
// most once after a burst.
func (in *intake) writeLoop() {
	defer close(in.done)
	idle := time.NewTicker(in.idle)
	defer idle.Stop()
	gather := time.NewTimer(0)
	<-gather.C
	var group []*intakeWrite
	var buf []byte // the group's records, kept for the next group
	var wait time.Duration
	last := time.Now()
	for {
		select {
		case w := <-in.writes:
			group = append(group[:0], w)
			last = time.Now()
		case now := <-idle.C:
			if in.size > 0 && now.Sub(last) >= in.idle {
				in.next()
				in.kick()
			}
			continue
		case <-in.s.closing:
			// Without its zeros, so that the next start finds the file as
			// it was written (the zeros would do no harm: replay stops there).
			if err := in.f.Truncate(in.size); err != nil {
				in.s.logger.Warn("intake log: zeros after the last record not cut off", "err", err)
			}
			in.f.Close()
			return
		}
		if wait > 0 {
			gather.Reset(wait)
		gathering:
			for len(group) < maxGroup {
				select {
				case w := <-in.writes:
					group = append(group, w)
				case <-gather.C:
					break gathering
				case <-in.s.closing: // the group is synced and answered first
					break gathering
				}
			}
			gather.Stop()
		}
	drain:
		for len(group) < maxGroup {
			select {
			case w := <-in.writes:
				group = append(group, w)
			default:
				break drain
			}
		}
		buf = buf[:0]
		for _, w := range group {
			buf = append(buf, w.rec...)
		}
		start := time.Now()
		err := in.write(buf)
		if err == nil {
			in.size += int64(len(buf))
			in.backlog.Add(int64(len(group)))
			in.mu.Lock()
			in.syncSize = in.size
			in.mu.Unlock()
			took := time.Since(start)
			wait = 0
			if len(group) > 1 {
				wait = min(took/2, intakeMaxGather)
			}
			if m := in.s.metrics; m != nil {
				m.intakeSyncSeconds.Observe(took.Seconds())
			}
		}
		for _, w := range group {
			w.done <- err
		}
		clear(group) // the records are the messages' only copies
		if cap(buf) > intakeKeepBuffer {
			buf = nil // a group of large messages: not kept
		}
		if err != nil {
			// Whatever part of the group reached the file was not
			// acknowledged; cut it off so that records logged later are not
			// hidden behind it, or leave it as the end of this generation.
			in.s.logger.Error("intake log write failed", "err", err)
			if terr := in.f.Truncate(in.size); terr != nil {
				in.s.logger.Error("intake log: cutting a failed write", "err", terr)
				in.next()
			}
			in.zeroed = in.size
			continue
		}
		if in.size >= in.rotate {
			in.next()
		}
		in.kick()
	}
}

// write puts buf after the records and fdatasyncs it. Where buf reaches
// beyond the zeros, the file grows by another step of them in the same
// sync; every other sync leaves the file's size alone and so flushes the
// records only, not the inode too: on ext4 that halves a sync's time,
// which every sender waits for.
func (in *intake) write(buf []byte) error {
	if _, err := in.f.WriteAt(buf, in.size); err != nil {
		return err
	}
	if end := in.size + int64(len(buf)); end > in.zeroed {
		// A page per write: the kernel caches a larger write in a larger
		// folio, and every later record written into it would dirty, and
		// have the sync write back, the whole folio (ten times the bytes).
		page := int64(len(intakeZeros))
		off := end
		for off < end+intakeGrow {
			n := page - off%page // to the next page's start
			if _, err := in.f.WriteAt(intakeZeros[:n], off); err != nil {
				return err
			}
			off += n
		}
		in.zeroed = off
	}
	return unix.Fdatasync(int(in.f.Fd()))
}

// kick tells the applier there is something to apply.
func (in *intake) kick() {
	select {
	case in.apply <- struct{}{}:
	default:
	}
}

// next closes the current generation and starts the next one.
func (in *intake) next() {
	in.f.Close()
	in.gen++
	if err := in.openGen(); err != nil {
		in.s.logger.Error("intake log rotation failed", "err", err)
	}
}

// applyLoop moves synced records into bbolt whenever the writer has some,
// after letting them gather for a moment: a bbolt commit costs two
// fsyncs and the pages it writes whether it applies two messages or two
// hundred, and under a stream of mail each sync group is only a few.
func (in *intake) applyLoop() {
	defer close(in.applied)
	gather := time.NewTimer(0)
	<-gather.C
	for {
		select {
		case <-in.apply:
		case <-in.s.closing:
			return
		}
		gather.Reset(intakeGather)
	gathering:
		for in.backlog.Load() < intakeGatherRecords {
			select {
			case <-in.apply:
			case <-gather.C:
				break gathering
			case <-in.s.closing:
				return
			}
		}
		gather.Stop()
		if err := in.flush(); err != nil {
			in.s.logger.Error("applying the intake log", "err", err)
		}
	}
}

// flush applies everything synced so far.
func (in *intake) flush() error {
	in.mu.Lock()
	gen, size := in.syncGen, in.syncSize
	in.mu.Unlock()
	in.applyMu.Lock()
	defer in.applyMu.Unlock()
	return in.applyUpTo(gen, size)
}

// replay applies everything an earlier process logged, cutting a torn
// tail, and removes the files it has fully applied.
func (in *intake) replay() error {
	gens, err := intakeFiles(in.base)
	if err != nil || len(gens) == 0 {
		return err
	}
	last := gens[len(gens)-1]
	fi, err := os.Stat(intakeName(in.base, last))
	if err != nil {
		return err
	}
	return in.applyUpTo(last, fi.Size())
}

// applyUpTo applies records from the recorded position up to generation
// gen, offset size, in transactions of at most a few thousand messages.
func (in *intake) applyUpTo(gen uint64, size int64) error {
	for {
		pos, err := in.position()
		if err != nil {
			return err
		}
		if pos.gen > gen || pos.gen == gen && pos.off >= size {
			return nil
		}
		end := int64(-1) // older generations: to their end
		if pos.gen == gen {
			end = size
		}
		f, err := os.Open(intakeName(in.base, pos.gen))
		if errors.Is(err, os.ErrNotExist) {
			// Nothing was logged in that generation (or it was applied and
			// removed): go on with the next.
			if err := in.setPosition(intakePos{pos.gen + 1, 0}); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		done, err := in.applyFile(f, pos, end)
		f.Close()
		if err != nil {
			return err
		}
		if done && pos.gen < gen {
			if err := in.setPosition(intakePos{pos.gen + 1, 0}); err != nil {
				return err
			}
			os.Remove(intakeName(in.base, pos.gen))
		}
		if pos.gen == gen {
			return nil
		}
	}
}

// applyFile applies records of f from pos up to end (-1: the end of the
// file, cutting a torn tail). It reports whether it reached the end.
func (in *intake) applyFile(f *os.File, pos intakePos, end int64) (bool, error) {
	if _, err := f.Seek(pos.off, io.SeekStart); err != nil {
		return false, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	off := pos.off
	for {
		type rec struct {
			m   *InboundMail
			raw []byte
		}
		var batch []rec
		var bytesIn int
		atEnd := false
		for len(batch) < 4096 && bytesIn < 32<<20 {
			if end >= 0 && off >= end {
				atEnd = true
				break
			}
			m, raw, n, err := readIntake(r)
			if errors.Is(err, io.EOF) || errors.Is(err, errTorn) {
				// A torn record can only be the last one written before a
				// crash: nothing after it was acknowledged.
				atEnd = true
				break
			}
			batch = append(batch, rec{m, raw})
			bytesIn += len(raw)
			off += n
		}
		if len(batch) > 0 {
			var ids []uint64
			err := in.s.update(context.Background(), func(tx *bolt.Tx) error {
				ids = ids[:0]
				for _, b := range batch {
					if err := putMail(tx, b.m, b.raw); err != nil {
						return err
					}
					ids = append(ids, b.m.ID)
				}
				return putIntakePos(tx, intakePos{pos.gen, off})
			})
			if err != nil {
				return false, err
			}
			in.backlog.Add(-int64(len(batch)))
			if fn := in.stored.Load(); fn != nil {
				(*fn)(ids)
			}
		}
		if atEnd {
			return end < 0, nil
		}
	}
}

type intakePos struct {
	gen uint64
	off int64
}

func putIntakePos(tx *bolt.Tx, p intakePos) error {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, p.gen)
	binary.BigEndian.PutUint64(v[8:], uint64(p.off))
	return tx.Bucket(bucketMeta).Put(keyIntakePos, v)
}

func (in *intake) position() (intakePos, error) {
	p := intakePos{gen: 1}
	err := in.s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyIntakePos); len(v) == 16 {
			p = intakePos{binary.BigEndian.Uint64(v), int64(binary.BigEndian.Uint64(v[8:]))}
		}
		return nil
	})
	return p, err
}

func (in *intake) setPosition(p intakePos) error {
	return in.s.update(context.Background(), func(tx *bolt.Tx) error { return putIntakePos(tx, p) })
}

// OnMailStored has fn told the IDs of accepted messages once they are in
// the store, so that processing need not poll.
func (s *Store) OnMailStored(fn func(ids []uint64)) { s.intake.stored.Store(&fn) }
