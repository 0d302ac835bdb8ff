# %post: $1 is 1 on install, 2 or more on upgrade. A new install is
# enabled but not started (the configuration needs the site's addresses
# first); upgrades restart in %postun.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
	systemctl enable dirigent.service >/dev/null 2>&1 || :
fi
exit 0
