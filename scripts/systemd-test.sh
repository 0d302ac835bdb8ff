#!/bin/bash
# The .deb under a real systemd: a minimal Debian 12 root with systemd,
# booted with systemd-nspawn (private network), where a probe service
# installs the package, starts, reloads, upgrades and purges it with
# systemctl and apt, and checks what the unit promises: Type=notify
# readiness, the watchdog being fed, the sandbox really applied (user,
# capabilities, seccomp, no new privileges), the hold-audio pacer at
# real-time priority without CAP_SYS_NICE, and SMTP on port 25 without
# root.
#
#   scripts/systemd-test.sh OLD.deb NEW.deb
#
# Needs root, debootstrap and systemd-nspawn (systemd-container).
# packaging/package_test.go runs it. DIRIGENT_CACHE_DIR and
# DIRIGENT_DEBIAN_MIRROR as for scripts/install-test.sh.
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 OLD.deb NEW.deb" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "systemd-test: needs root (debootstrap, systemd-nspawn)" >&2
	exit 2
fi

cache=${DIRIGENT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dirigent}
mirror=${DIRIGENT_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/* *$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
	mirror=${mirror:-http://deb.debian.org/debian}
fi
include=systemd,systemd-sysv,dbus,init-system-helpers,procps
rootfs=$cache/debian-bookworm-minbase+$include.tar.gz

work=$(mktemp -d "${TMPDIR:-/tmp}/dirigent-systemd-test.XXXXXX")
cleanup() {
	awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount -l
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT

if [ ! -s "$rootfs" ]; then
	echo "=== debootstrap a minimal Debian 12 with systemd from $mirror (cached in $rootfs)"
	mkdir -p "$cache" "$work/boot"
	debootstrap --variant=minbase --include=$include bookworm "$work/boot" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		{ tail -20 "$work/debootstrap.log" >&2; exit 1; }
	tar -C "$work/boot" -czf "$rootfs.tmp" .
	mv "$rootfs.tmp" "$rootfs"
	rm -rf "$work/boot"
fi

root=$work/root
mkdir -p "$root"
tar -C "$root" -xzf "$rootfs"
# nspawn puts a tmpfs on /tmp: the packages go to /var/tmp.
cp "$1" "$root/var/tmp/old.deb"
cp "$2" "$root/var/tmp/new.deb"

cat >"$root/usr/local/sbin/dirigent-probe" <<'PROBE'
#!/bin/bash
# Runs inside the booted container as a oneshot service, then powers off.
exec >/probe.log 2>&1
set -uo pipefail
step() { printf '\n=== %s\n' "$*"; }
fail() {
	echo "FAIL: $*"
	systemctl status dirigent --no-pager
	journalctl -u dirigent --no-pager | tail -40
	systemctl poweroff
	exit 1
}
prop() { systemctl show dirigent -P "$1"; }
http_get() { # PORT PATH: prints the status line
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET %s HTTP/1.0\r\n\r\n' "$2" >&3
	head -1 <&3 | tr -d '\r'
	exec 3<&-
}
http_body() { # PORT PATH: prints the body
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET %s HTTP/1.0\r\n\r\n' "$2" >&3
	sed '1,/^\r$/d' <&3
	exec 3<&-
}
smtp_send() { # PORT: one message to support@example.com; prints the reply to DATA's end
	exec 4<>"/dev/tcp/127.0.0.1/$1" || return 1
	local l
	say() { printf '%s\r\n' "$1" >&4; }
	expect() { # CODE: read the (multi-line) reply, fail unless it starts with CODE
		while IFS= read -r -t 10 l <&4; do
			l=${l%$'\r'}
			[[ $l == "$1-"* ]] && continue
			[[ $l == "$1 "* ]] && { echo "$l"; return 0; }
			echo "unexpected: $l"
			return 1
		done
		echo "no reply"
		return 1
	}
	expect 220 >/dev/null && say "EHLO probe.example" && expect 250 >/dev/null &&
		say "MAIL FROM:<joe@customer.example>" && expect 250 >/dev/null &&
		say "RCPT TO:<support@example.com>" && expect 250 >/dev/null &&
		say "DATA" && expect 354 >/dev/null &&
		say "From: Joe <joe@customer.example>" && say "To: support@example.com" &&
		say "Subject: under systemd" && say "" && say "sent by the probe" && say "." &&
		expect 250 && say "QUIT"
	exec 4<&-
}

step "apt install: user from sysusers, unit enabled, not started"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /var/tmp/old.deb || fail "apt install"
id dirigent || fail "no dirigent user"
[ "$(systemctl is-enabled dirigent)" = enabled ] || fail "not enabled after install"
[ "$(systemctl is-active dirigent)" = inactive ] || fail "started by the install: $(systemctl is-active dirigent)"

step "configure: SMTP on port 25 (CAP_NET_BIND_SERVICE), a 2 s watchdog to see it fed"
sed -i 's/^smtp_listen = .*/smtp_listen = "127.0.0.1:25"/' /etc/dirigent/dirigent.toml
mkdir -p /etc/systemd/system/dirigent.service.d
printf '[Service]\nWatchdogSec=2s\n' >/etc/systemd/system/dirigent.service.d/watchdog.conf
systemctl daemon-reload

step "systemctl start: Type=notify ready only when serving"
systemctl start dirigent || fail "systemctl start"
[ "$(systemctl is-active dirigent)" = active ] || fail "not active"
echo "status: $(prop StatusText)"
[ "$(http_get 8080 /readyz)" = "HTTP/1.0 200 OK" ] || fail "/readyz not 200 right after start returned"
pid=$(prop MainPID)

step "the sandbox is applied to the running daemon"
grep -E '^(Uid|Gid|CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "/proc/$pid/status"
[ "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")" = "$(id -u dirigent)" ] || fail "not running as dirigent"
[ "$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")" = 0000000000000400 ] || fail "effective capabilities are not CAP_NET_BIND_SERVICE only"
[ "$(awk '/^CapBnd:/ {print $2}' "/proc/$pid/status")" = 0000000000000400 ] || fail "bounding set is not CAP_NET_BIND_SERVICE only"
[ "$(awk '/^NoNewPrivs:/ {print $2}' "/proc/$pid/status")" = 1 ] || fail "NoNewPrivs not set"
[ "$(awk '/^Seccomp:/ {print $2}' "/proc/$pid/status")" = 2 ] || fail "no seccomp filter"
[ "$(stat -c '%U %a' /var/lib/dirigent)" = "dirigent 750" ] || fail "state directory: $(stat -c '%U %a' /var/lib/dirigent)"

step "the hold-audio pacer's thread, and only it, gets real time (LimitRTPRIO=, no CAP_SYS_NICE), and says so"
[ "$(prop LimitRTPRIO)" = 10 ] && [ "$(prop LimitNICE)" = 30 ] && [ "$(prop RestrictRealtime)" = no ] ||
	fail "unit: LimitRTPRIO=$(prop LimitRTPRIO) LimitNICE=$(prop LimitNICE) RestrictRealtime=$(prop RestrictRealtime)"
grep -E '^Max (nice|realtime) priority' "/proc/$pid/limits"
ps -L -o tid=,cls=,rtprio=,ni= -p "$pid"
journalctl -u dirigent --no-pager | grep 'hold audio paced' || fail "no log line saying how hold audio is paced"
policy=$(http_body 8080 /metrics | sed -n 's/^dirigent_sip_hold_audio_scheduling{policy="\(.*\)"} 1$/\1/p')
echo "dirigent_sip_hold_audio_scheduling: $policy"
if [ "$(awk '/^Max realtime priority/ {print $4}' "/proc/$pid/limits")" = 10 ]; then
	[ "$policy" = realtime ] || fail "RLIMIT_RTPRIO is 10, yet the pacer got $policy"
	[ "$(ps -L -o cls=,rtprio= -p "$pid" | awk '$1 == "FF" && $2 == 10' | wc -l)" = 1 ] || fail "not one thread at SCHED_FIFO 10"
	[ "$(ps -L -o cls= -p "$pid" | grep -vc TS)" = 1 ] || fail "other threads than the pacer's left normal scheduling"
else
	# systemd sets limits as close as it may: a container whose hard limits
	# are 0 and which lacks CAP_SYS_RESOURCE cannot raise them.
	echo "NOTE: RLIMIT_RTPRIO could not be raised here (hard limit 0 outside the container): real time not checked"
	[ "$policy" = normal ] || [ "$policy" = nice ] || fail "metric says $policy"
	journalctl -u dirigent --no-pager | grep -q "hold audio paced .*$policy" || fail "log and metric disagree"
fi

step "a mail over SMTP on port 25 is stored (fdatasync under the system-call filter)"
reply=$(smtp_send 25) || fail "SMTP: $reply"
echo "$reply"

step "the watchdog is fed: 5 s with WatchdogSec=2s and no restart"
sleep 5
[ "$(prop NRestarts)" = 0 ] && [ "$(prop MainPID)" = "$pid" ] || fail "restarted (watchdog not fed?): NRestarts=$(prop NRestarts)"
[ "$(systemctl is-active dirigent)" = active ] || fail "not active after 5 s"

step "a crash is restarted: SIGABRT, as a Go panic ends under GOTRACEBACK=crash"
kill -ABRT "$pid"
for _ in $(seq 100); do
	[ "$(prop NRestarts)" = 1 ] && [ "$(systemctl is-active dirigent)" = active ] && break
	sleep 0.1
done
[ "$(prop NRestarts)" = 1 ] || fail "not restarted after a crash: NRestarts=$(prop NRestarts), $(systemctl is-active dirigent)"
[ "$(systemctl is-active dirigent)" = active ] || fail "$(systemctl is-active dirigent) after the crash"
pid=$(prop MainPID)
[ "$(http_get 8080 /readyz)" = "HTTP/1.0 200 OK" ] || fail "/readyz after the restart"

step "dirigent backup --config /etc/dirigent/dirigent.toml (the control socket in /run/dirigent)"
dirigent backup --config /etc/dirigent/dirigent.toml --out /var/backups/dirigent.db || fail "backup"

step "systemctl reload: SIGHUP through ExecReload, applied"
sed -i 's/^level = "info"/level = "debug"/' /etc/dirigent/dirigent.toml
systemctl reload dirigent || fail "systemctl reload"
sleep 1
journalctl -u dirigent --no-pager | grep -q 'configuration reloaded' || fail "the journal does not say the configuration was reloaded"
[ "$(prop MainPID)" = "$pid" ] || fail "reload replaced the process"

step "a broken configuration: start refused by check-config, exit 2, no restart loop"
cp /etc/dirigent/dirigent.toml /var/tmp/good.toml
sed -i 's/^level = .*/level = "loud"/' /etc/dirigent/dirigent.toml
systemctl restart dirigent && fail "restart with a broken configuration succeeded"
sleep 5 # more than RestartSec
[ "$(systemctl is-active dirigent)" = failed ] || fail "$(systemctl is-active dirigent) with a broken configuration, want failed"
# (a manual restart resets the counter)
[ "$(prop NRestarts)" = 0 ] || fail "restarted $(prop NRestarts) times with a broken configuration"
[ "$(prop ExecMainStatus)" = 2 ] || fail "exit status $(prop ExecMainStatus), want 2"
journalctl -u dirigent --no-pager | grep -q 'log.level' || fail "the journal does not name the bad key"
cp /var/tmp/good.toml /etc/dirigent/dirigent.toml
systemctl reset-failed dirigent
systemctl start dirigent || fail "start after fixing the configuration"
pid=$(prop MainPID)

step "upgrade while running: try-restart, configuration kept"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold /var/tmp/new.deb || fail "upgrade"
[ "$(systemctl is-active dirigent)" = active ] || fail "not active after the upgrade"
[ "$(prop MainPID)" != "$pid" ] || fail "not restarted by the upgrade"
grep -q '^smtp_listen = "127.0.0.1:25"' /etc/dirigent/dirigent.toml || fail "the upgrade lost the edited configuration"
[ "$(http_get 8080 /readyz)" = "HTTP/1.0 200 OK" ] || fail "/readyz after the upgrade"

step "systemctl stop: clean exit"
systemctl stop dirigent
[ "$(prop ExecMainStatus)" = 0 ] || fail "exit status $(prop ExecMainStatus) after stop"

step "upgrade while stopped stays stopped"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall /var/tmp/new.deb || fail "reinstall"
[ "$(systemctl is-active dirigent)" = inactive ] || fail "a stopped daemon was started by the upgrade"

step "purge while running: stopped, user and state gone"
systemctl start dirigent
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq dirigent || fail "purge"
[ "$(systemctl is-active dirigent)" != active ] || fail "still running after purge"
! id dirigent 2>/dev/null || fail "user left after purge"
[ ! -e /var/lib/dirigent ] || fail "state left after purge"

step "systemd test passed"
systemctl poweroff
PROBE
chmod 755 "$root/usr/local/sbin/dirigent-probe"
cat >"$root/etc/systemd/system/dirigent-probe.service" <<'UNIT'
[Unit]
Description=dirigent package probe
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/dirigent-probe
[Install]
WantedBy=multi-user.target
UNIT
ln -s /etc/systemd/system/dirigent-probe.service "$root/etc/systemd/system/multi-user.target.wants/dirigent-probe.service"

echo "=== boot the root with systemd-nspawn"
# --keep-unit --register=no: no systemd (machined) on the host is needed.
if ! timeout 300 systemd-nspawn --quiet --register=no --keep-unit --private-network \
	--directory="$root" --boot >"$work/boot.log" 2>&1; then
	tail -30 "$work/boot.log" >&2
fi
cat "$root/probe.log" 2>/dev/null || { tail -30 "$work/boot.log" >&2; echo "FAIL: the probe did not run" >&2; exit 1; }
grep -qx '=== systemd test passed' "$root/probe.log"
