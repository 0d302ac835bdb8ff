package mail

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"dirigent/store"
)

// MailboxConfig is one IMAP mailbox dirigent fetches customer mail from.
type MailboxConfig struct {
	Name     string // names the mailbox in the store and in logs
	Addr     string // host:port
	TLS      string // "tls" (993), "starttls" or "none"
	User     string
	Password string
	Folder   string // default INBOX
	MoveTo   string // move fetched messages here; empty: mark them \Seen
	Poll     time.Duration
}

// fetcher reads one mailbox: each new message is stored durably first,
// then marked \Seen or moved, then counted as read — so a restart at any
// point neither loses a message nor stores it twice.
type fetcher struct {
	c   *Channel
	cfg MailboxConfig
}

func (f *fetcher) source() string { return "imap:" + f.cfg.Name }

// run fetches until ctx ends, reconnecting after errors.
func (f *fetcher) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := f.session(ctx); err != nil && ctx.Err() == nil {
			f.c.metrics.fetchErrors.Inc()
			f.c.deps.Logger.Warn("mailbox fetch failed; retrying", "mailbox", f.cfg.Name, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(f.cfg.Poll):
		}
	}
}

// session is one connection: fetch what is new, then wait for more with
// IDLE where the server has it, else poll.
func (f *fetcher) session(ctx context.Context) error {
	news := make(chan struct{}, 1)
	opts := &imapclient.Options{
		Dialer:    &net.Dialer{Timeout: 30 * time.Second},
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case news <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	var cl *imapclient.Client
	var err error
	switch f.cfg.TLS {
	case "none":
		cl, err = imapclient.DialInsecure(f.cfg.Addr, opts)
	case "starttls":
		cl, err = imapclient.DialStartTLS(f.cfg.Addr, opts)
	default:
		cl, err = imapclient.DialTLS(f.cfg.Addr, opts)
	}
	if err != nil {
		return err
	}
	defer cl.Close()
	stop := context.AfterFunc(ctx, func() { cl.Close() })
	defer stop()
	if err := cl.Login(f.cfg.User, f.cfg.Password).Wait(); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	for ctx.Err() == nil {
		if err := f.fetchNew(ctx, cl); err != nil {
			return err
		}
		if !cl.Caps().Has(imap.CapIdle) {
			return nil // the caller polls
		}
		idle, err := cl.Idle()
		if err != nil {
			return err
		}
		select {
		case <-news:
		case <-time.After(f.cfg.Poll):
		case <-ctx.Done():
		}
		if err := idle.Close(); err != nil {
			return err
		}
		if err := idle.Wait(); err != nil {
			return err
		}
	}
	return nil
}

// fetchNew stores every message above the last UID read.
func (f *fetcher) fetchNew(ctx context.Context, cl *imapclient.Client) error {
	sel, err := cl.Select(f.cfg.Folder, nil).Wait()
	if err != nil {
		return fmt.Errorf("select %s: %w", f.cfg.Folder, err)
	}
	st, err := f.c.deps.Store.FetchState(f.cfg.Name)
	if err != nil {
		return err
	}
	if st.UIDValidity != sel.UIDValidity {
		// A new mailbox, or the server renumbered it: read it all again;
		// Message-IDs keep what was stored before from coming twice.
		st = store.FetchState{UIDValidity: sel.UIDValidity}
	}
	var set imap.UIDSet
	set.AddRange(imap.UID(st.LastUID+1), 0) // 0 is "*"
	found, err := cl.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{set}}, nil).Wait()
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	for _, uid := range found.AllUIDs() {
		if uint32(uid) <= st.LastUID {
			continue // "n:*" always includes the highest UID
		}
		if ctx.Err() != nil {
			return nil
		}
		if err := f.fetchOne(ctx, cl, uid, &st); err != nil {
			return err
		}
	}
	return nil
}

func (f *fetcher) fetchOne(ctx context.Context, cl *imapclient.Client, uid imap.UID, st *store.FetchState) error {
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := cl.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return fmt.Errorf("fetch %d: %w", uid, err)
	}
	if len(msgs) == 1 {
		raw := msgs[0].FindBodySection(section)
		m := &store.InboundMail{
			Received:  time.Now().UTC(),
			Source:    f.source(),
			SourceID:  fmt.Sprintf("%s/%d/%d", f.cfg.Name, st.UIDValidity, uid),
			MessageID: headerMessageID(raw),
		}
		if len(raw) > f.c.cfg.SMTP.MaxMessageBytes {
			f.c.deps.Logger.Warn("mailbox message over mail.max_message_bytes; left in the mailbox", "mailbox", f.cfg.Name, "uid", uid, "bytes", len(raw))
		} else {
			stored, err := f.c.deps.Store.StoreMail(ctx, m, raw)
			if err != nil {
				return err
			}
			if stored {
				f.c.metrics.received.WithLabelValues("imap").Inc()
				f.c.stored(m.ID)
			}
			// Durable: now the server may forget it.
			if f.cfg.MoveTo != "" {
				if _, err := cl.Move(imap.UIDSetNum(uid), f.cfg.MoveTo).Wait(); err != nil {
					return fmt.Errorf("move %d to %s: %w", uid, f.cfg.MoveTo, err)
				}
			} else if err := cl.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
				return fmt.Errorf("mark %d seen: %w", uid, err)
			}
		}
	}
	st.LastUID = uint32(uid)
	return f.c.deps.Store.SetFetchState(ctx, f.cfg.Name, *st)
}

// headerMessageID reads the Message-ID of a raw message, or "".
func headerMessageID(raw []byte) string {
	m, err := netmail.ReadMessage(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return ""
	}
	return strings.Trim(strings.TrimSpace(m.Header.Get("Message-Id")), "<>")
}
