#!/bin/bash
# Measures the web chat under load: 2,000 chats held open over loopback
# WebSockets, each customer writing one message every 5 s, an agent
# answering each through the channel's Go API; delivery latency (p50, p99)
# customer → agent callback ("in") and agent → customer ("out"), after a
# 10 s warm-up in which every chat connects and its first message makes its
# contact and task. Every message is fsynced in the store before it is
# delivered, so each round also measures the disk's own fdatasync latency
# as the floor. ROUNDS rounds of SECONDS each (about 2×SECONDS+15 s a round).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
export DIRIGENT_CHAT_SESSIONS=${SESSIONS:-2000} DIRIGENT_CHAT_SECONDS=${SECONDS_PER_ROUND:-60}
for r in $(seq "$rounds"); do
	echo "round $r: $DIRIGENT_CHAT_SESSIONS chats, ${DIRIGENT_CHAT_SECONDS} s measured"
	go test -run '^$' -bench 'BenchmarkChatSessions|BenchmarkDiskSyncReference' -benchtime 1x -timeout 30m ./chat/ |
		grep -E '^Benchmark|sessions connected'
done
