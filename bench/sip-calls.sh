#!/bin/bash
# Complete calls per second: the same sipp caller (bench/sip-caller.xml)
# and sipp agent phone (bench/sip-agent.xml: answers at once, hangs up
# when ACKed) talk first through Kamailio as a stateful relay (tm
# t_relay, bench/kamailio.cfg: the reference) and then through dirigent,
# where a complete call is: caller answered with hold audio, the call
# queued, offered to one of AGENTS agents, that agent's phone rung and
# answering, the legs bridged, the agent's BYE ending both, the contact
# recorded. Each side is driven at each rate of RATES for SECONDS
# seconds; a run is clean when no call failed. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
agents=${AGENTS:-100} rates=${RATES:-"200 400 800 1200 1600"} seconds=${SECONDS_PER_RATE:-5}
work=$(mktemp -d)
echo "work dir: $work" >&2
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
go build -o "$work/dirigent" ./cmd/dirigent

agent_port=15090 kamailio_port=15080 dirigent_port=15070
# Callers: many customers, as on a real line. (All calls from one number
# would make every call a repeat of the previous one, which waits for the
# customer's previous agent: 1,000 calls a second queueing for one agent.)
{
	echo SEQUENTIAL
	seq -f '030%07.0f;' 1000000 1049999
} >"$work/callers.csv"
sipp -sf bench/sip-agent.xml -i 127.0.0.1 -p "$agent_port" -mp 15200 -nostdin ${AGENT_EXTRA:-} >/dev/null 2>&1 &
sleep 0.5

# rate NAME PORT: drives the caller at every rate, prints one line each.
rate() {
	local name=$1 port=$2 r n start end ok failed
	for r in $rates; do
		n=$((r * seconds))
		rm -f "$work/stat.csv"
		start=$(date +%s.%N)
		sipp "127.0.0.1:$port" -sf bench/sip-caller.xml -i 127.0.0.1 -p 15100 -mp 15300 -nostdin \
			-r "$r" -m "$n" -l $((r * 4)) -timeout 120s -recv_timeout 10000 \
			-key dialled +4930123456 -inf "$work/callers.csv" \
			-trace_stat -stf "$work/stat.csv" -fd 600 ${SIPP_EXTRA:-} >/dev/null 2>&1 || true
		end=$(date +%s.%N)
		read -r ok failed < <(awk -F';' 'NR==1{for(i=1;i<=NF;i++){if($i=="SuccessfulCall(C)")s=i;if($i=="FailedCall(C)")f=i}} END{print $s, $f}' "$work/stat.csv")
		printf '%-9s offered %5d calls/s: %6d complete, %5d failed in %5.1f s = %6.0f complete calls/s%s\n' \
			"$name" "$r" "$ok" "$failed" "$(echo "$end - $start" | bc)" "$(echo "$ok / ($end - $start)" | bc)" \
			"$([ "$failed" -eq 0 ] && echo " (clean)")"
	done
}

if [ "${ONLY:-}" != dirigent ]; then
sed -e "s/KAMAILIO_PORT/$kamailio_port/" -e "s/AGENT_ADDR/127.0.0.1:$agent_port/" bench/kamailio.cfg >"$work/kamailio.cfg"
kamailio -f "$work/kamailio.cfg" -DD -E -m 256 -M 32 -w "$work" -P "$work/kamailio.pid" >"$work/kamailio.log" 2>&1 &
kam=$!
sleep 1
rate kamailio "$kamailio_port"
kill "$kam"
wait "$kam" 2>/dev/null || true
fi

{
	cat <<TOML
skills = ["support"]
[log]
level = "${LOG_LEVEL:-warn}"
[storage]
dir = "$work/data"
[control]
socket = "$work/control.sock"
[desk]
listen = "127.0.0.1:15099"
[mail]
smtp_listen = "127.0.0.1:0"
[chat]
listen = "127.0.0.1:0"
[routing]
offer_timeout = "10s"
max_missed_offers = 0
[sip]
listen = "127.0.0.1:$dirigent_port"
rtp_port_min = 20000
rtp_port_max = 60000
available_on_register = true
[[sip.trunks]]
name = "local"
cidrs = ["127.0.0.0/8"]
[[sip.numbers]]
number = "+4930123456"
queue = "support"
[[queues]]
name = "support"
skills = { support = 1 }
channels = ["voice"]
TOML
	for i in $(seq "$agents"); do
		printf '[[agents]]\nid = "a%d"\nskills = { support = 1 }\n[[sip.users]]\nuser = "a%d"\npassword = "p%d"\nagent = "a%d"\n' "$i" "$i" "$i" "$i"
	done
} >"$work/bench.toml"
"$work/dirigent" serve --config "$work/bench.toml" >"$work/dirigent.log" 2>&1 &
sleep 1
for i in $(seq "$agents"); do
	sipp "127.0.0.1:$dirigent_port" -sf bench/sip-register.xml -i 127.0.0.1 -p 15101 -nostdin -m 1 \
		-s "a$i" -au "a$i" -ap "p$i" -key agent "127.0.0.1:$agent_port" >/dev/null 2>&1 || echo "agent a$i did not register" >&2
done
rate dirigent "$dirigent_port"
grep -i "level=error" "$work/dirigent.log" | head -5 || true
# What dirigent counted: calls by outcome, rings by result, refusals.
curl -s http://127.0.0.1:15099/metrics | grep -E '^dirigent_sip_(calls_total|agent_rings_total|rejected_total)' | grep -v ' 0$' || true
