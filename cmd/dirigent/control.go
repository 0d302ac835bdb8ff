package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"

	"dirigent/config"
)

// loadConfig loads path, or the embedded default when path is empty.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default()
	}
	return config.Load(path)
}

// loadToServe is loadConfig with the certificates read, as serving needs
// them (check-config, serve and reload); admin commands do not need them
// readable.
func loadToServe(path string) (*config.Config, error) {
	if path == "" {
		return config.Default()
	}
	return config.LoadToServe(path)
}

// controlTarget is the running daemon an admin command talks to, named
// by the --config and --socket flags every such command has.
type controlTarget struct {
	cfgPath, socket *string
}

// controlFlags makes the flag set of an admin command.
func controlFlags(name string, stderr io.Writer) (*flag.FlagSet, controlTarget) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, controlTarget{
		cfgPath: fs.String("config", "", "find the control socket in this config `file` (default: the embedded default)"),
		socket:  fs.String("socket", "", "control socket `path` (overrides --config)"),
	}
}

// do sends a request to the daemon's control socket: --socket if given,
// else the one the configuration names. Any answer but 200 is an error
// carrying the daemon's message.
func (c controlTarget) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	socket := *c.socket
	if socket == "" {
		cfg, err := loadConfig(*c.cfgPath)
		if err != nil {
			return nil, usageError{err}
		}
		socket = cfg.Control.Socket
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, method, "http://control"+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("is dirigent running? %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var msg struct{ Error string }
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(raw, &msg) == nil && msg.Error != "" {
			return nil, fmt.Errorf("dirigent answered %s: %s", resp.Status, msg.Error)
		}
		return nil, fmt.Errorf("dirigent answered %s: %s", resp.Status, raw)
	}
	return resp, nil
}
