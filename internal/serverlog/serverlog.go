// Package serverlog gives the servers facing the internet (desk and chat
// over HTTP, mail over SMTP) an error log on slog. What a client does to
// its own connection — a failed TLS handshake (a port scanner, a load
// balancer's probe, plain HTTP sent to the HTTPS port), a connection it
// resets (a spam bot) — is logged at debug level: on a listener facing
// the internet it is no news. Everything else is a warning. It imports
// nothing of dirigent.
package serverlog

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// HTTP is for http.Server.ErrorLog.
func HTTP(logger *slog.Logger) *log.Logger {
	return errorLog(logger, "http: TLS handshake error")
}

// SMTP is for go-smtp's Server.ErrorLog, which reports a connection that
// ended in a read error (a reset, a failed TLS handshake) as "error
// handling ADDR: …".
func SMTP(logger *slog.Logger) *log.Logger {
	return errorLog(logger, "error handling ")
}

func errorLog(logger *slog.Logger, noNews string) *log.Logger {
	return log.New(writer{logger, noNews}, "", 0)
}

type writer struct {
	logger *slog.Logger
	noNews string // the prefix of what is logged at debug level
}

func (w writer) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	if strings.HasPrefix(msg, w.noNews) {
		level = slog.LevelDebug
	}
	w.logger.Log(context.Background(), level, msg)
	return len(p), nil
}
