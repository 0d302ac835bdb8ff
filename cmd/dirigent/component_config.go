package main

import (
	"fmt"
	"slices"
	"strings"

	"dirigent/chat"
	"dirigent/config"
	"dirigent/desk"
	"dirigent/internal/clientaddr"
	"dirigent/journey"
	"dirigent/mail"
	"dirigent/router"
	"dirigent/sip"
)

// routerConfig translates the configuration into the router's terms.
func routerConfig(c *config.Config) (router.Config, error) {
	rc := router.Config{
		Skills:            c.Skills,
		OfferTimeout:      c.Routing.OfferTimeout.Duration,
		MaxMissedOffers:   c.Routing.MaxMissedOffers,
		RetryDelay:        c.Routing.RetryDelay.Duration,
		VoiceBlocksOthers: c.Routing.VoiceBlocksOthers,
		TierWeight:        c.Routing.TierWeight,
		RepeatBoost:       c.Routing.RepeatBoost,
		AgingPerMinute:    c.Routing.AgingPerMinute,
	}
	for _, a := range c.Agents {
		rc.Agents = append(rc.Agents, router.AgentSpec{
			ID:       a.ID,
			Skills:   a.Skills,
			Capacity: [3]int{router.Voice: a.Capacity.Voice, router.Email: a.Capacity.Email, router.Message: a.Capacity.Message},
		})
	}
	for _, q := range c.Queues {
		strategy, err := router.ParseStrategy(q.Strategy)
		if err != nil {
			return rc, fmt.Errorf("queue %s: %w", q.Name, err)
		}
		qs := router.QueueSpec{
			Name:                  q.Name,
			Skills:                q.Skills,
			Priority:              float64(q.Priority),
			Strategy:              strategy,
			ServiceLevelThreshold: q.ServiceLevelThreshold.Duration,
			ServiceLevelTarget:    q.ServiceLevelTarget,
			WrapUp:                q.WrapUp.Duration,
			MaxWait:               q.MaxWait.Duration,
			OverflowQueue:         q.OverflowQueue,
			LastAgentWait:         q.LastAgentWait.Duration,
		}
		for _, ch := range q.Channels {
			c, err := router.ParseChannel(ch)
			if err != nil {
				return rc, fmt.Errorf("queue %s: %w", q.Name, err)
			}
			qs.Channels = append(qs.Channels, c)
		}
		for _, w := range q.Widening {
			qs.Widening = append(qs.Widening, router.WideningStep{After: w.After.Duration, Skills: w.Skills})
		}
		rc.Queues = append(rc.Queues, qs)
	}
	return rc, nil
}

// deskLogins says who may log in to the desk: every agent, and the
// configured supervisors and admins.
func deskLogins(c *config.Config) desk.Logins {
	l := desk.Logins{Supervisors: slices.Clone(c.Desk.Supervisors), Admins: slices.Clone(c.Desk.Admins)}
	for _, a := range c.Agents {
		l.Agents = append(l.Agents, a.ID)
	}
	return l
}

// journeyConfig translates the configuration into the journey's terms.
func journeyConfig(c *config.Config) journey.Config {
	jc := journey.Config{
		Region:           c.Journey.Region,
		RepeatWindow:     c.Journey.RepeatWindow.Duration,
		ResolvedOutcomes: c.Journey.ResolvedOutcomes,
		MinConfidence:    c.Journey.MinConfidence,
		RetrainInterval:  c.Journey.RetrainInterval.Duration,
		LearnedPriority:  c.Journey.LearnedPriority,
		TextRetention:    c.Journey.TextRetention.Duration,
	}
	for _, in := range c.Intents {
		jc.Intents = append(jc.Intents, journey.IntentRule{
			Name: in.Name, Queue: in.Queue, Subject: in.Subject, Body: in.Body, Recipients: in.Recipients, Dialled: in.Dialled,
		})
	}
	for _, a := range c.Actions {
		jc.Actions = append(jc.Actions, journey.ActionRule{
			Text: a.Text, Reason: a.Reason, Priority: a.Priority, Intents: a.Intents, Channels: a.Channels,
			MinTier: a.MinTier, Repeat: a.Repeat, LastOutcomes: a.LastOutcomes, OpenContact: a.OpenContact,
		})
	}
	return jc
}

// mailConfig translates the configuration into the mail channel's terms.
func mailConfig(c *config.Config) mail.Config {
	mc := mail.Config{
		SMTP: mail.SMTPConfig{
			Listen:                 c.Mail.SMTPListen,
			Hostname:               c.Mail.Hostname,
			Addresses:              slices.Clone(c.Mail.Addresses),
			Domains:                slices.Clone(c.Mail.Domains),
			MaxMessageBytes:        c.Mail.MaxMessageBytes,
			MaxConnectionsPerIP:    c.Mail.MaxConnectionsPerIP,
			MessagesPerMinutePerIP: c.Mail.MessagesPerMinutePerIP,
		},
		Smarthost: mail.SmarthostConfig{
			Addr:     c.Mail.Smarthost,
			TLS:      c.Mail.SmarthostTLS,
			User:     c.Mail.SmarthostUser,
			Password: c.Mail.SmarthostPassword,
			MaxBytes: c.Mail.SmarthostMaxBytes,
			From:     c.Mail.From,
			Hostname: c.Mail.Hostname,
		},
		DefaultQueue: c.Mail.Queue,
		AutoAck:      strings.TrimSpace(c.Mail.AutoAck),
	}
	for _, mb := range c.Mail.IMAP {
		mc.Mailboxes = append(mc.Mailboxes, mail.MailboxConfig{
			Name: mb.Name, Addr: mb.Server, TLS: mb.TLS, User: mb.User, Password: mb.Password,
			Folder: mb.Folder, MoveTo: mb.MoveTo, Poll: mb.Poll.Duration,
		})
	}
	return mc
}

// sipConfig translates the configuration into the voice channel's terms.
func sipConfig(c *config.Config) sip.Config {
	s := c.SIP
	sc := sip.Config{
		Listen: s.Listen, TLSListen: s.TLSListen,
		Realm: s.Realm, MediaIP: s.MediaIP, RTPPortMin: s.RTPPortMin, RTPPortMax: s.RTPPortMax,
		MinExpires: s.MinExpires.Duration, MaxExpires: s.MaxExpires.Duration,
		HoldAudio: s.HoldAudio, QueueHoldAudio: s.QueueHoldAudio, DeskURL: s.DeskURL,
		AvailableOnRegister: s.AvailableOnRegister,
	}
	sc.Users, sc.Trunks = sipAccounts(s)
	for _, n := range s.Numbers {
		sc.Numbers = append(sc.Numbers, sip.Number{Number: n.Number, Queue: n.Queue, Intent: n.Intent, IVR: n.IVR})
	}
	for _, m := range s.IVR {
		sc.Menus = append(sc.Menus, sip.Menu{Name: m.Name, Prompt: m.Prompt, Timeout: m.Timeout.Duration, Default: m.Default, Digits: m.Digits})
	}
	return sc
}

// sipAccounts are the agents' SIP accounts and the trunks: what a reload
// changes of the voice channel.
func sipAccounts(s config.SIP) (users []sip.User, trunks []sip.Trunk) {
	for _, u := range s.Users {
		users = append(users, sip.User{User: u.User, Password: u.Password, Agent: u.Agent})
	}
	for _, t := range s.Trunks {
		trunks = append(trunks, sip.Trunk{Name: t.Name, CIDRs: t.CIDRs, User: t.User, Password: t.Password})
	}
	return users, trunks
}

// trustedProxies are a listener's reverse proxies; Validate has refused
// what does not parse.
func trustedProxies(list []string) clientaddr.Proxies {
	ps, _ := clientaddr.ParseProxies(list)
	return ps
}

// agentNames are the agents' names as customers see them in chats.
func agentNames(c *config.Config) map[string]string {
	names := map[string]string{}
	for _, a := range c.Agents {
		names[a.ID] = a.Name
	}
	return names
}

// chatConfig translates the configuration into the message channel's
// terms.
func chatConfig(c *config.Config) chat.Config {
	loc := c.Chat.Location()
	cc := chat.Config{
		Listen:            c.Chat.Listen,
		AllowedOrigins:    slices.Clone(c.Chat.AllowedOrigins),
		DefaultQueue:      c.Chat.Queue,
		MaxMessageBytes:   c.Chat.MaxMessageBytes,
		MessagesPerMinute: c.Chat.MessagesPerMinute,
		MaxSessionsPerIP:  c.Chat.MaxSessionsPerIP,
		TrustedProxies:    trustedProxies(c.Chat.TrustedProxies),
		IdleTimeout:       c.Chat.IdleTimeout.Duration,
		Location:          loc,
		Queues:            map[string]chat.QueueSettings{},
		AgentNames:        agentNames(c),
	}
	for _, q := range c.Chat.Queues {
		qs := chat.QueueSettings{
			Closed: chat.Texts{DE: q.ClosedDE, EN: q.ClosedEN},
			Nobody: chat.Texts{DE: q.NobodyDE, EN: q.NobodyEN},
		}
		if h, err := config.ParseHours(q.Hours, loc); err == nil && h != nil { // Validate reported errors
			qs.Open = h.Open
		}
		cc.Queues[q.Name] = qs
	}
	return cc
}
