# %preun: $1 is 0 when the package is erased, 1 or more on upgrade (the
# old package's %preun). Only an erase stops and disables the service.
if [ "$1" -eq 0 ]; then
	systemctl --no-reload disable --now dirigent.service >/dev/null 2>&1 || :
fi
exit 0
