# %pre: the user exists before rpm unpacks the files, so that
# /etc/dirigent/dirigent.toml can be shipped group-owned by dirigent.
if ! getent passwd dirigent >/dev/null; then
	if command -v systemd-sysusers >/dev/null 2>&1; then
		echo 'u dirigent - "dirigent contact-center daemon" /var/lib/dirigent /usr/sbin/nologin' |
			systemd-sysusers -
	else
		getent group dirigent >/dev/null || groupadd --system dirigent
		useradd --system --gid dirigent --home-dir /var/lib/dirigent \
			--no-create-home --shell /usr/sbin/nologin \
			--comment "dirigent contact-center daemon" dirigent
	fi
fi
exit 0
