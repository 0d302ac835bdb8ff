# %postun: $1 is 0 after an erase, 1 or more after an upgrade. An upgrade
# restarts the daemon only if it was running. rpm has no purge: the user,
# the configuration saved as .rpmsave and /var/lib/dirigent stay after an
# erase; an admin deletes them by hand (see the README).
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -ge 1 ]; then
	systemctl try-restart dirigent.service >/dev/null 2>&1 || :
fi
exit 0
