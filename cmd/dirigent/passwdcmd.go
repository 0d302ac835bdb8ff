package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/term"

	"dirigent/desk"
	"dirigent/store"
)

// passwd sets a desk login's password. The password is read from the
// terminal without echo (twice), or from the first line of stdin when
// that is no terminal (scripts); never from the command line, where
// other users would see it in the process list.
//
// The command hashes the password itself and hands only the bcrypt hash
// to the running daemon over the control socket. When no daemon answers
// there (before the first start, or while it is stopped), it writes the
// hash into the store file directly; the store's lock keeps the two
// from ever writing at once.
func passwd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, target := controlFlags("passwd", stderr)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("usage: dirigent passwd [--config FILE | --socket PATH] USER   (the password is read from the terminal or stdin)")}
	}
	user := fs.Arg(0)
	cfg, err := loadConfig(*target.cfgPath)
	if err != nil {
		return usageError{err}
	}
	logins := deskLogins(cfg)
	// With --socket the daemon's configuration may not be the one read
	// here: the daemon checks the name then.
	if *target.socket == "" && len(logins.Roles(user)) == 0 {
		return usageError{fmt.Errorf("%q is no desk login: add it to [[agents]], desk.supervisors or desk.admins first", user)}
	}
	password, err := readPassword(stdin, stderr)
	if err != nil {
		return err
	}
	hash, err := desk.HashPassword(password)
	if err != nil {
		return usageError{err}
	}
	body, _ := json.Marshal(map[string]string{"password_hash": string(hash)})
	resp, err := target.do(ctx, "PUT", "/desk-users/"+user+"/password", bytes.NewReader(body))
	if err == nil {
		defer resp.Body.Close()
		var answer struct {
			Ended string `json:"sessions_ended"`
		}
		json.NewDecoder(resp.Body).Decode(&answer)
		fmt.Fprintf(stdout, "password of %s set; %s desk session(s) with the old one ended\n", user, answer.Ended)
		return nil
	}
	if !daemonAbsent(err) {
		return err
	}
	st, serr := store.Open(store.Options{Path: cfg.StorePath(), LockTimeout: cfg.Storage.LockTimeout.Duration, Logger: slog.New(slog.DiscardHandler)})
	if serr != nil {
		return fmt.Errorf("the daemon does not answer (%v), and the store cannot be opened: %w", err, serr)
	}
	defer st.Close()
	if err := desk.SetPassword(ctx, st, logins, user, hash); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "password of %s set (in %s; dirigent was not running)\n", user, cfg.StorePath())
	return nil
}

// daemonAbsent: nothing listens on the control socket.
func daemonAbsent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED))
}

// readPassword reads a password: from a terminal without echo, asking
// twice; otherwise the first line of stdin.
func readPassword(stdin io.Reader, prompt io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "new password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		fmt.Fprint(prompt, "again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		if !bytes.Equal(p1, p2) {
			return "", usageError{errors.New("the passwords differ")}
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		return "", usageError{errors.New("no password on stdin")}
	}
	return strings.TrimRight(line, "\r\n"), nil
}
