# %post: $1 is 1 on install, 2 or more on upgrade. A new install is
# enabled but not started (the configuration needs the site's addresses
# first); upgrades restart in %postun.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
	systemctl enable dirigent.service >/dev/null 2>&1 || :
fi
# The SIP socket's receive-buffer limit now, not only from the next boot
# (as Fedora's %sysctl_apply; by name, so an override in /etc/sysctl.d is
# honoured). A container may refuse it: the daemon then warns at start.
if [ -d /run/systemd/system ]; then
	/usr/lib/systemd/systemd-sysctl 30-dirigent.conf >/dev/null 2>&1 || :
fi
exit 0
