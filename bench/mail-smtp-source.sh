#!/bin/bash
# Measures SMTP intake: postfix's smtp-source sends 20,000 messages of 4 KB
# over 10 parallel sessions, a new connection per message (as MTAs
# deliver), into postfix's smtp-sink (which stores nothing: the reference),
# into bench/smtp-discard (go-smtp, the library dirigent uses, storing
# nothing: what the library allows here) and into dirigent (which fsyncs
# every message before 250 and processes it into a contact and a task
# meanwhile). The three take turns for ROUNDS rounds, so that other load
# on the machine falls on all alike; each round prints the rates,
# dirigent's share of the sink's, and dirigent's CPU time and disk writes
# per message once it has processed them all. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${MESSAGES:-20000} sessions=${SESSIONS:-10} size=${SIZE:-4096} rounds=${ROUNDS:-3}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT

go build -o "$work/dirigent" ./cmd/dirigent
go build -o "$work/smtp-discard" ./bench/smtp-discard

rate() { # rate PORT: prints messages per second
	local start end
	start=$(date +%s.%N)
	smtp-source -s "$sessions" -m "$n" -l "$size" -f joe@example.org -t support@example.com "127.0.0.1:$1"
	end=$(date +%s.%N)
	echo "$n / ($end - $start)" | bc
}

sinkuser=()
[ "$(id -u)" -eq 0 ] && sinkuser=(-u postfix)
smtp-sink "${sinkuser[@]}" 127.0.0.1:12526 100 &
"$work/smtp-discard" 127.0.0.1:12528 &
sleep 0.5

cat >"$work/bench.toml" <<TOML
skills = ["support"]
[log]
level = "warn"
[storage]
dir = "$work/data"
[control]
socket = "$work/control.sock"
[desk]
listen = "127.0.0.1:12529"
[chat]
listen = "127.0.0.1:0"
[sip]
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

for round in $(seq "$rounds"); do
	sink=$(rate 12526)
	discard=$(rate 12528)
	rm -rf "$work/data"
	"$work/dirigent" serve --config "$work/bench.toml" &
	daemon=$!
	for _ in $(seq 100); do
		(echo >/dev/tcp/127.0.0.1/12527) 2>/dev/null && break
		sleep 0.1
	done
	ours=$(rate 12527)
	# What the daemon spent per message, once it has processed them too
	# (at most 30 s more).
	for _ in $(seq 300); do
		processed=$(curl -s "http://127.0.0.1:12529/metrics" | awk '/^dirigent_mail_messages_processed_total/ {n += $2} END {print n + 0}')
		[ "$processed" -ge "$n" ] && break
		sleep 0.1
	done
	cpu=$(awk -v n="$n" -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz * 1000 / n}' "/proc/$daemon/stat")
	written=$(awk -v n="$n" '/^write_bytes/ {printf "%.1f", $2 / n / 1024}' "/proc/$daemon/io")
	kill "$daemon"
	wait "$daemon" || true
	echo "round $round: smtp-sink $sink messages/s, go-smtp discarding $discard ($((100 * discard / sink)) %), dirigent (fsynced before 250) $ours = $((100 * ours / sink)) % (its CPU $cpu ms and $written KB written per message)"
done
