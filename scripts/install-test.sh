#!/bin/bash
# Install test of the packages in a minimal Debian 12 root made with
# debootstrap, following the README's "Install and operate" section step by
# step: install, configure, run, reload, monitor, back up and restore,
# upgrade, remove, purge (.deb); install, upgrade and erase (.rpm, with the
# host's rpm --root on a copy of the same root).
#
#   scripts/install-test.sh OLD.deb NEW.deb OLD.rpm NEW.rpm
#
# NEW must carry a higher version than OLD. Needs root, debootstrap,
# curl, swaks, promtool and rpm. packaging/install_test.go runs it.
#
# What a chroot without systemd cannot show is done by hand and said so:
# the script creates /var/lib/dirigent and /run/dirigent and sets
# STATE_DIRECTORY and RUNTIME_DIRECTORY as the unit's StateDirectory= and
# RuntimeDirectory= would, runs the daemon as the dirigent user with
# setpriv instead of systemctl start, and sends SIGHUP and SIGTERM itself
# as ExecReload= and systemctl stop do. The sandboxing of the unit is
# checked statically (systemd-analyze) and by the system-call test.
#
# Environment: DIRIGENT_CACHE_DIR (default ~/.cache/dirigent) keeps the
# debootstrap result between runs; DIRIGENT_DEBIAN_MIRROR (default: the
# host's Debian mirror) is where debootstrap downloads from.
set -euo pipefail

if [ $# -ne 4 ]; then
	echo "usage: $0 OLD.deb NEW.deb OLD.rpm NEW.rpm" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-test: needs root (chroot, dpkg, useradd)" >&2
	exit 2
fi

step() { printf '\n=== %s\n' "$*"; }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

cache=${DIRIGENT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dirigent}
mirror=${DIRIGENT_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/* *$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
	mirror=${mirror:-http://deb.debian.org/debian}
fi
# The packages' dependencies are in the root: apt installs them offline.
include=init-system-helpers,procps
rootfs=$cache/debian-bookworm-minbase+$include.tar.gz

# debootstrap needs the network: it runs before the namespaces, once.
if [ -z "${DIRIGENT_INSTALL_TEST_NS:-}" ] && [ ! -s "$rootfs" ]; then
	step "debootstrap a minimal Debian 12 (bookworm) root from $mirror (cached in $rootfs)"
	boot=$(mktemp -d "${TMPDIR:-/tmp}/dirigent-debootstrap.XXXXXX")
	trap 'rm -rf --one-file-system "$boot"' EXIT
	mkdir -p "$cache"
	debootstrap --variant=minbase --include=$include bookworm "$boot/root" "$mirror" >"$boot/debootstrap.log" 2>&1 ||
		{ tail -20 "$boot/debootstrap.log" >&2; fail "debootstrap"; }
	tar -C "$boot/root" -czf "$rootfs.tmp" .
	mv "$rootfs.tmp" "$rootfs"
	rm -rf --one-file-system "$boot"
	trap - EXIT
fi


# Everything below runs in private mount, network and process namespaces:
# the mounts vanish, the daemon dies and its loopback ports never meet the
# host's when the script ends, however it ends.
if [ -z "${DIRIGENT_INSTALL_TEST_NS:-}" ]; then
	export DIRIGENT_INSTALL_TEST_NS=1
	exec unshare --mount --net --pid --fork --mount-proc -- "$0" "$@"
fi
mount --make-rprivate /
ip link set lo up

old_deb=$(realpath "$1") new_deb=$(realpath "$2") old_rpm=$(realpath "$3") new_rpm=$(realpath "$4")

work=$(mktemp -d "${TMPDIR:-/tmp}/dirigent-install-test.XXXXXX")
cleanup() {
	# Unmount /proc of the roots first: rm must never walk into a mount.
	awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount -l
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# new_root DIR: a fresh copy of the cached root with /proc mounted.
new_root() {
	mkdir -p "$1"
	tar -C "$1" -xzf "$rootfs"
	mount -t proc proc "$1/proc"
}

root=$work/deb-root
new_root "$root"
in_root() { chroot "$root" "$@"; }
# What the README tells admins: runuser -u dirigent -- COMMAND.
as_dirigent() { chroot "$root" runuser -u dirigent -- "$@"; }

# ---------------------------------------------------------------- .deb
step "README, Install: apt install ./dirigent_<version>_amd64.deb"
cp "$old_deb" "$root/tmp/"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "/tmp/$(basename "$old_deb")" ||
	fail "installing $(basename "$old_deb")"

step "the dirigent user and group exist, with no login"
in_root getent passwd dirigent || fail "no user dirigent"
in_root getent group dirigent || fail "no group dirigent"
[ "$(in_root getent passwd dirigent | cut -d: -f6,7)" = /var/lib/dirigent:/usr/sbin/nologin ] ||
	fail "dirigent's home and shell: $(in_root getent passwd dirigent)"

step "the configuration is in place: /etc/dirigent/dirigent.toml, 0640 root:dirigent, a conffile"
[ "$(in_root stat -c '%a %U:%G' "/etc/dirigent/dirigent.toml")" = "640 root:dirigent" ] ||
	fail "config mode and owner: $(in_root stat -c '%a %U:%G' "/etc/dirigent/dirigent.toml")"
in_root dpkg-query -W -f='${Conffiles}\n' dirigent | grep -q ' /etc/dirigent/dirigent.toml ' ||
	fail "dirigent.toml is not a conffile"

step "the unit is enabled but nothing was started"
[ -L "$root/etc/systemd/system/multi-user.target.wants/dirigent.service" ] ||
	fail "dirigent.service not enabled (no multi-user.target.wants link)"
! pgrep -x dirigent >/dev/null || fail "a dirigent process runs after install"
for f in /usr/bin/dirigent /lib/systemd/system/dirigent.service /usr/lib/sysusers.d/dirigent.conf \
	/usr/share/man/man8/dirigent.8.gz /usr/share/doc/dirigent/copyright /usr/share/doc/dirigent/changelog.Debian.gz \
	/usr/share/doc/dirigent/README.md /usr/share/doc/dirigent/monitoring/dirigent-alerts.yml; do
	[ -e "$root$f" ] || fail "$f not installed"
done
ls "$root/usr/share/dirigent/sounds/"

step "dirigent check-config passes as the dirigent user"
as_dirigent dirigent check-config /etc/dirigent/dirigent.toml || fail "check-config as dirigent"
old_version=$(in_root dirigent version)
echo "$old_version"

step "README, Configure: edit the file, dirigent check-config"
conf=$root/etc/dirigent/dirigent.toml
# This machine's ports stay free anyway (own network namespace), but the
# edit is what an admin does: other ports, and a comment of the site's.
sed -i -e 's/^listen = "127.0.0.1:8080"/listen = "127.0.0.1:18080"/' \
	-e 's/^listen = "127.0.0.1:5060"/listen = "127.0.0.1:15060"/' \
	-e 's/^smtp_listen = "127.0.0.1:2525"/smtp_listen = "127.0.0.1:12525"/' "$conf"
echo "# edited by the install test" >>"$conf"
grep -q '127.0.0.1:18080' "$conf" || fail "could not edit desk.listen"
as_dirigent dirigent check-config /etc/dirigent/dirigent.toml || fail "check-config after the edit"
cp "$conf" "$work/edited.toml"
# A broken edit is refused with exit status 2 (the unit's
# RestartPreventExitStatus) and the key named.
printf '[desk]\nlisten = "nowhere"\n' >"$root/tmp/broken.toml"
set +e
out=$(in_root dirigent check-config /tmp/broken.toml 2>&1)
rc=$?
set -e
[ $rc -eq 2 ] || fail "check-config of a broken file exited $rc, want 2"
echo "$out" | grep -q 'desk.listen' || fail "check-config did not name desk.listen: $out"

# start_daemon: what systemctl start does with the unit, by hand.
daemon_pid=
start_daemon() {
	in_root install -d -o dirigent -g dirigent -m 0750 /var/lib/dirigent /run/dirigent
	as_dirigent dirigent check-config /etc/dirigent/dirigent.toml
	(umask 0077 && exec chroot "$root" setpriv --reuid=dirigent --regid=dirigent --init-groups \
		env STATE_DIRECTORY=/var/lib/dirigent RUNTIME_DIRECTORY=/run/dirigent \
		dirigent serve --config /etc/dirigent/dirigent.toml) >>"$work/daemon.log" 2>&1 &
	daemon_pid=$!
	for _ in $(seq 100); do
		curl -sf http://127.0.0.1:18080/readyz >/dev/null && return 0
		kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/daemon.log" >&2; fail "the daemon exited"; }
		sleep 0.1
	done
	cat "$work/daemon.log" >&2
	fail "the daemon did not become ready"
}
stop_daemon() {
	kill -TERM "$daemon_pid"
	wait "$daemon_pid" || fail "the daemon exited $? on SIGTERM, want 0"
}
metric() { curl -sf http://127.0.0.1:18080/metrics | awk -v m="$1" '$1 == m { print $2 }'; }
# wait_metric SERIES VALUE: wait up to 10 s for SERIES to have VALUE.
wait_metric() {
	local got
	for _ in $(seq 100); do
		got=$(metric "$1")
		[ "$got" = "$2" ] && return 0
		sleep 0.1
	done
	fail "$1 is ${got:-absent}, want $2"
}

step "run it as the unit would (StateDirectory, RuntimeDirectory, User=dirigent)"
start_daemon
[ "$(in_root stat -c '%a %U' "/var/lib/dirigent/dirigent.db")" = "600 dirigent" ] ||
	fail "store mode and owner: $(in_root stat -c '%a %U' "/var/lib/dirigent/dirigent.db")"
[ -S "$root/run/dirigent/control.sock" ] || fail "no control socket in /run/dirigent"

step "README, Monitor: /metrics passes promtool check metrics and has every metric the alerts use"
curl -sf http://127.0.0.1:18080/metrics >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt" || fail "promtool check metrics"
promtool check rules "$root/usr/share/doc/dirigent/monitoring/dirigent-alerts.yml" || fail "promtool check rules"
for m in $(grep -o 'dirigent_[a-z0-9_]*' "$root/usr/share/doc/dirigent/monitoring/dirigent-alerts.yml" | sort -u); do
	case $m in
	# Present once a task was answered; the router exports it then.
	dirigent_router_service_level_ratio) continue ;;
	esac
	grep -q "^$m[{ ]" "$work/metrics.txt" || fail "the alert rules use $m, which /metrics does not have"
done

step "a customer mail arrives (swaks), so that the store holds something to back up"
swaks --silent 1 --server 127.0.0.1:12525 --from joe@customer.example --to support@example.com \
	--header 'Subject: first' --body 'my order is late' || fail "swaks: first mail"
wait_metric 'dirigent_router_tasks_waiting{queue="support"}' 1

step "README, Back up: dirigent backup --config /etc/dirigent/dirigent.toml --out /var/backups/dirigent-DATE.db"
backup=/var/backups/dirigent-$(date +%F).db
in_root dirigent backup --config /etc/dirigent/dirigent.toml --out "$backup" || fail "backup as root"
as_dirigent dirigent backup --config /etc/dirigent/dirigent.toml --out /var/lib/dirigent/by-dirigent.db ||
	fail "backup as the dirigent user"

swaks --silent 1 --server 127.0.0.1:12525 --from ann@other.example --to support@example.com \
	--header 'Subject: second' --body 'after the backup' || fail "swaks: second mail"
wait_metric 'dirigent_router_tasks_waiting{queue="support"}' 2

step "README, Reload: edit, dirigent check-config, systemctl reload (SIGHUP)"
sed -i 's/^level = "info"/level = "debug"/' "$conf"
as_dirigent dirigent check-config /etc/dirigent/dirigent.toml
kill -HUP "$daemon_pid"
wait_metric 'dirigent_config_reloads_total{result="applied"}' 1
cp "$conf" "$work/good.toml"
echo 'no_such_key = 1' >>"$conf"
kill -HUP "$daemon_pid"
wait_metric dirigent_config_last_reload_successful 0
wait_metric 'dirigent_config_reloads_total{result="refused"}' 1
curl -sf http://127.0.0.1:18080/readyz >/dev/null || fail "not ready after a refused reload"
cp "$work/good.toml" "$conf"
cp "$conf" "$work/edited.toml"

step "README, Restore: stop, remove the intake logs, copy the backup over /var/lib/dirigent/dirigent.db (owner dirigent), start"
stop_daemon
# Mail accepted after the backup may still sit in the intake logs beside
# the store; left there, it would be replayed onto the restored store.
rm -f "$root"/var/lib/dirigent/dirigent.db.intake.*.log
install -o "$(in_root id -u dirigent)" -g "$(in_root id -g dirigent)" -m 0600 "$root$backup" "$root/var/lib/dirigent/dirigent.db"
start_daemon
# The restored store has the first mail's task only; the second came
# after the backup.
wait_metric 'dirigent_router_tasks_waiting{queue="support"}' 1
stop_daemon

step "README, Upgrade: apt install ./<newer>.deb keeps the edited configuration"
cp "$new_deb" "$root/tmp/"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold \
	"/tmp/$(basename "$new_deb")" || fail "upgrading to $(basename "$new_deb")"
new_version=$(in_root dirigent version)
[ "$new_version" != "$old_version" ] || fail "the version did not change: $new_version"
echo "$old_version -> $new_version"
cmp "$conf" "$work/edited.toml" || fail "the upgrade changed the edited configuration"
[ "$(in_root stat -c '%a %U:%G' /etc/dirigent/dirigent.toml)" = "640 root:dirigent" ] || fail "the upgrade changed the config's mode or owner"
[ -e "$root/var/lib/dirigent/dirigent.db" ] || fail "the upgrade lost the store"
as_dirigent dirigent check-config /etc/dirigent/dirigent.toml || fail "check-config after the upgrade"
start_daemon
wait_metric 'dirigent_router_tasks_waiting{queue="support"}' 1
stop_daemon

step "remove keeps the user, the configuration and the store"
in_root dpkg --remove dirigent
in_root getent passwd dirigent >/dev/null || fail "remove deleted the user"
[ -e "$conf" ] || fail "remove deleted the configuration"
[ -e "$root/var/lib/dirigent/dirigent.db" ] || fail "remove deleted the store"
[ ! -e "$root/usr/bin/dirigent" ] || fail "remove left /usr/bin/dirigent"

step "purge removes the user, the group, the configuration and the state"
in_root dpkg --purge dirigent
! in_root getent passwd dirigent >/dev/null || fail "purge left the user"
! in_root getent group dirigent >/dev/null || fail "purge left the group"
[ ! -e "$root/var/lib/dirigent" ] || fail "purge left /var/lib/dirigent"
[ ! -e "$root/etc/dirigent" ] || fail "purge left /etc/dirigent"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/dirigent.service" ] || fail "purge left the enablement link"
umount "$root/proc"

# ---------------------------------------------------------------- .rpm
# No RPM distribution here: the host's rpm installs into a copy of the
# Debian root (rpm --root runs the scriptlets chrooted into it), which has
# the sh, getent, useradd and groupadd they use. systemctl is absent
# there, as in a container; the scriptlets ignore that.
root=$work/rpm-root
new_root "$root"
rpm_root() { rpm --root "$root" --nodeps "$@"; }

step "rpm -i: user created, configuration 0640 root:dirigent, check-config as dirigent"
rpm_root -i "$old_rpm" || fail "rpm -i"
in_root getent passwd dirigent || fail "no user dirigent after rpm -i"
conf=$root/etc/dirigent/dirigent.toml
[ "$(in_root stat -c '%a %U:%G' /etc/dirigent/dirigent.toml)" = "640 root:dirigent" ] || fail "rpm config mode and owner: $(in_root stat -c '%a %U:%G' /etc/dirigent/dirigent.toml)"
as_dirigent dirigent check-config /etc/dirigent/dirigent.toml || fail "check-config as dirigent (rpm)"
rpm --root "$root" -qc dirigent | grep -qx /etc/dirigent/dirigent.toml || fail "dirigent.toml is not a %config file"

step "rpm -U keeps the edited configuration"
echo "# edited by the install test" >>"$conf"
cp "$conf" "$work/edited-rpm.toml"
rpm_root -U "$new_rpm" || fail "rpm -U"
cmp "$conf" "$work/edited-rpm.toml" || fail "rpm -U changed the edited configuration"
[ "$(rpm --root "$root" -q --qf '%{VERSION}' dirigent)" = "$(rpm -qp --qf '%{VERSION}' "$new_rpm")" ] || fail "rpm -U did not upgrade"

step "rpm -e removes the files; rpm has no purge, so user and state stay"
mkdir -p "$root/var/lib/dirigent"
rpm_root -e dirigent || fail "rpm -e"
[ ! -e "$root/usr/bin/dirigent" ] || fail "rpm -e left /usr/bin/dirigent"
[ -e "$root/etc/dirigent/dirigent.toml.rpmsave" ] || fail "rpm -e did not save the edited configuration as .rpmsave"
in_root getent passwd dirigent >/dev/null || fail "rpm -e deleted the user"
umount "$root/proc"

step "install test passed"
