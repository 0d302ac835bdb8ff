package main

import (
	"context"
	"errors"
	"fmt"

	"dirigent/chat"
	"dirigent/config"
	"dirigent/desk"
	"dirigent/journey"
	"dirigent/router"
	"dirigent/sip"
)

// journalTee hands each router event to the store's journal, to the
// message channel, which follows its chat tasks (an agent took the chat,
// it was given up), and to the desk, which follows tasks answered
// elsewhere (a call picked up on the phone). None blocks, as Record runs
// under the router's lock.
type journalTee struct {
	journal *storeJournal
	d       *daemon
}

func (t journalTee) Record(e router.Event) {
	t.journal.Record(e)
	if t.d.chat != nil { // set while the daemon is built, before the router runs
		t.d.chat.TaskEvent(e)
	}
	if t.d.desk != nil { // likewise
		t.d.desk.RouterEvent(e)
	}
	if t.d.sip != nil { // likewise: hangs up calls the router gave up on
		t.d.sip.TaskEvent(e)
	}
}

// deskChats is the message channel as the desk sees it; nil (not a nil
// *chat.Channel) when it is off.
func (d *daemon) deskChats() desk.Chats {
	if d.chat == nil {
		return nil
	}
	return d.chat
}

// deskChatEvent passes a customer's chat message, typing or leaving to
// the desk, in the desk's terms.
func (d *daemon) deskChatEvent(e chat.Event) {
	if d.desk == nil { // set while the daemon is built, before chats run
		return
	}
	d.desk.OnChat(desk.ChatEvent{
		Kind: e.Kind, ConversationID: e.ConversationID, TaskID: e.TaskID, Agent: e.Agent,
		Seq: e.Seq, Text: e.Text, Active: e.Active, At: e.At,
	})
}

// chatRun runs the message channel, or waits when it is off (no queue
// takes messages).
func (d *daemon) chatRun(ctx context.Context) error {
	if d.chat == nil {
		<-ctx.Done()
		return nil
	}
	return d.chat.Run(ctx)
}

// chatAddr is the chat widget's address for the log, "off" when none.
func (d *daemon) chatAddr() string {
	if d.chat == nil {
		return "off"
	}
	return d.chat.Addr().String()
}

// sipMessages takes SIP MESSAGE into the message channel; nil when it is
// off, so that MESSAGE is answered 405.
func (d *daemon) sipMessages(cfg *config.Config) func(context.Context, sip.Message) error {
	if !cfg.Chat.On() {
		return nil
	}
	return d.sipMessage
}

// sipMessage hands a SIP MESSAGE to the message channel, its refusals in
// the voice channel's terms.
func (d *daemon) sipMessage(ctx context.Context, m sip.Message) error {
	err := d.chat.Inbound(ctx, "sip", chat.PeerMessage(m))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, chat.ErrMessageSize):
		return fmt.Errorf("%w: %w", sip.ErrMessageTooLarge, err)
	case errors.Is(err, chat.ErrMessageText), errors.Is(err, journey.ErrBadIdentity):
		return fmt.Errorf("%w: %w", sip.ErrMessageInvalid, err)
	case errors.Is(err, chat.ErrRate):
		return fmt.Errorf("%w: %w", sip.ErrMessageRate, err)
	}
	return err
}
