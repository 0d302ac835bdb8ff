// Package httplog gives an HTTP server an error log on slog. A failed TLS
// handshake (a port scanner, a load balancer's probe, plain HTTP sent to
// the HTTPS port) is logged at debug level: on a listener facing the
// internet it is no news. Everything else is a warning. It imports
// nothing of dirigent.
package httplog

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// ErrorLog is for http.Server.ErrorLog.
func ErrorLog(logger *slog.Logger) *log.Logger {
	return log.New(writer{logger}, "", 0)
}

type writer struct{ logger *slog.Logger }

func (w writer) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	w.logger.Log(context.Background(), level, msg)
	return len(p), nil
}
