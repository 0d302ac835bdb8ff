package config

import (
	"strings"
	"testing"
	"time"
)

func TestChatSection(t *testing.T) {
	bad := `[chat]
listen = "127.0.0.1:8080"
allowed_origins = ["https://shop.example.com", "shop.example.com", "https://x.example/path"]
queue = "mails"
time_zone = "Mars/Olympus"
max_message_bytes = 10
messages_per_minute = -1
idle_timeout = "5s"
trusted_proxies = ["::1", "10.0.0.0/8", "fe80::/129"]
[[chat.queues]]
name = "chats"
hours = "Mo-Fr 08:00-18:00; Sa 13:00-09:00"
[[chat.queues]]
name = "chats"
hours = "Xy 08:00-18:00"
[[chat.queues]]
name = "mails"
[[queues]]
name = "mails"
channels = ["email"]
[[queues]]
name = "chats"
channels = ["message"]
`
	want := []string{
		`t.toml:2: chat.listen: 127.0.0.1:8080 is already desk.listen`,
		`t.toml:3: chat.allowed_origins[1]: "shop.example.com" is not an origin: want scheme://host[:port], e.g. https://www.example.com`,
		`t.toml:3: chat.allowed_origins[2]: "https://x.example/path" is not an origin: want scheme://host[:port], e.g. https://www.example.com`,
		`t.toml:4: chat.queue: undefined queue "mails", or it does not take messages`,
		`t.toml:5: chat.time_zone: unknown time zone "Mars/Olympus" (want an IANA name such as Europe/Berlin)`,
		`t.toml:6: chat.max_message_bytes: 10 out of range 64–1048576`,
		`t.toml:7: chat.messages_per_minute: at least 1`,
		`t.toml:8: chat.idle_timeout: at least 1m`,
		`t.toml:9: chat.trusted_proxies[2]: "fe80::/129" is not an address or CIDR such as 192.0.2.0/24`,
		`t.toml:12: chat.queues[0].hours: "13:00-09:00": want a time span HH:MM-HH:MM with the start before the end`,
		`t.toml:14: chat.queues[1].name: queue "chats" is listed twice`,
		`t.toml:15: chat.queues[1].hours: "Xy": want days such as Mo, Mo-Fr or Sa,So (German or English)`,
		`t.toml:17: chat.queues[2].name: undefined queue "mails", or it does not take messages`,
	}
	_, err := Parse("t.toml", []byte(bad))
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}

	good := "[chat]\ntime_zone = \"Europe/Berlin\"\n[[chat.queues]]\nname = \"chats\"\nhours = \"Mo-Fr 08:00-18:00\"\n" +
		"[[queues]]\nname = \"mails\"\nchannels = [\"email\"]\n[[queues]]\nname = \"chats\"\nchannels = [\"message\"]\n"
	c, err := Parse("t.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Chat.Listen != "127.0.0.1:8081" || c.Chat.Queue != "chats" || c.Chat.MaxMessageBytes != 4096 ||
		c.Chat.MessagesPerMinute != 30 || c.Chat.MaxSessionsPerIP != 10 || c.Chat.IdleTimeout.Duration != 30*time.Minute {
		t.Errorf("defaults: %+v", c.Chat)
	}
	if c.Chat.Location().String() != "Europe/Berlin" {
		t.Errorf("location %v", c.Chat.Location())
	}
}

func TestOpeningHours(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHours("Mo-Fr 08:00-12:00 13:00-18:00; Sa,So 10:00-14:00; Fr-Mo 22:00-24:00", berlin)
	if err != nil {
		t.Fatal(err)
	}
	at := func(day int, clock string) time.Time { // 2026-11-23 is a Monday
		tt, err := time.ParseInLocation("2006-01-02 15:04", "2026-11-"+string(rune('0'+day/10))+string(rune('0'+day%10))+" "+clock, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	for _, tc := range []struct {
		t    time.Time
		open bool
	}{
		{at(23, "07:59"), false},
		{at(23, "08:00"), true},
		{at(23, "12:30"), false},
		{at(23, "17:59"), true},
		{at(23, "18:00"), false},
		{at(23, "23:30"), true},  // Fr-Mo wraps over the weekend
		{at(24, "23:30"), false}, // Tuesday
		{at(28, "11:00"), true},  // Saturday
		{at(28, "15:00"), false},
		{at(29, "22:00"), true},        // Sunday late
		{at(23, "08:30").UTC(), true},  // the zone is the configured one, not the caller's
		{at(23, "07:30").UTC(), false}, // 06:30 UTC
	} {
		if got := h.Open(tc.t); got != tc.open {
			t.Errorf("Open(%v) = %v, want %v", tc.t, got, tc.open)
		}
	}
	var always *OpeningHours
	if !always.Open(time.Now()) {
		t.Error("nil hours must be always open")
	}
	for _, s := range []string{"Mo", "Mo 8:00-9:00", "Mo 08:00-25:00", "Mo 09:00-09:00", "Mo-Xx 08:00-09:00", "Mo 08:00"} {
		if _, err := ParseHours(s, berlin); err == nil {
			t.Errorf("ParseHours(%q) succeeded", s)
		}
	}
}
