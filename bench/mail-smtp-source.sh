#!/bin/bash
# Measures SMTP intake: postfix's smtp-source sends 20,000 messages of 4 KB
# over 10 parallel sessions, a new connection per message (as MTAs
# deliver), first into postfix's smtp-sink (which stores nothing: the
# reference), then into dirigent (which fsyncs every message before 250).
# Loopback only. Prints messages per second for both.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${MESSAGES:-20000} sessions=${SESSIONS:-10} size=${SIZE:-4096}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/dirigent" ./cmd/dirigent

rate() { # rate NAME PORT
	local start end
	start=$(date +%s.%N)
	smtp-source -s "$sessions" -m "$n" -l "$size" -f joe@example.org -t support@example.com "127.0.0.1:$2"
	end=$(date +%s.%N)
	echo "$1: $n messages in $(echo "$end - $start" | bc) s = $(echo "$n / ($end - $start)" | bc) messages/s"
}

sinkuser=()
[ "$(id -u)" -eq 0 ] && sinkuser=(-u postfix)
smtp-sink "${sinkuser[@]}" 127.0.0.1:12526 100 &
sleep 0.5
rate "smtp-sink (stores nothing)" 12526

cat >"$work/bench.toml" <<TOML
skills = ["support"]
[log]
level = "warn"
[storage]
dir = "$work/data"
[control]
socket = "$work/control.sock"
[desk]
listen = "127.0.0.1:0"
[mail]
smtp_listen = "127.0.0.1:12527"
addresses = ["support@example.com"]
max_connections_per_ip = 1000
messages_per_minute_per_ip = 10000000
[[queues]]
name = "support"
skills = { support = 1 }
TOML
"$work/dirigent" serve --config "$work/bench.toml" &
for _ in $(seq 100); do
	(echo >/dev/tcp/127.0.0.1/12527) 2>/dev/null && break
	sleep 0.1
done
rate "dirigent (fsynced before 250)" 12527
