package mail

import (
	"context"
	"strings"
	"time"

	"dirigent/store"
)

// ackInterval: a sender gets at most one acknowledgement in this time, so
// that two automatic responders can never keep each other busy.
const ackInterval = time.Hour

// autoAck acknowledges a new conversation with the ticket tag to sender,
// whom answers go to. Mail that a program sent was already kept out (it
// makes no task); the interval per recipient is the second guard against
// mail loops.
func (c *Channel) autoAck(ctx context.Context, conv *store.Conversation, sender string, at time.Time) {
	if c.cfg.AutoAck == "" {
		return
	}
	sender = strings.ToLower(sender)
	if last, ok := c.acked[sender]; ok && at.Sub(last) < ackInterval {
		c.metrics.autoAcks.WithLabelValues("suppressed").Inc()
		return
	}
	c.acked[sender] = at
	for s, t := range c.acked { // forget old senders
		if at.Sub(t) >= ackInterval {
			delete(c.acked, s)
		}
	}
	text := strings.ReplaceAll(c.cfg.AutoAck, "{tag}", "[#"+conv.Tag+"]")
	// Queued even while the daemon stops: the message counts as processed
	// already, so nothing would acknowledge it after the restart. The
	// store stays open until the channels have returned.
	if _, err := c.Reply(context.WithoutCancel(ctx), conv.ID, "", "", text); err != nil {
		c.deps.Logger.Error("auto-acknowledgement not queued", "conversation", conv.ID, "err", err)
		return
	}
	c.metrics.autoAcks.WithLabelValues("sent").Inc()
}
