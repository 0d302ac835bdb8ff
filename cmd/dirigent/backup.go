package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"dirigent/store"
)

// backup asks the running daemon for a snapshot over the control socket,
// writes it next to --out, verifies it, and only then renames it into
// place: a failed backup never replaces a good older one.
func backup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, target := controlFlags("backup", stderr)
	out := fs.String("out", "", "write the backup to this `file`")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *out == "" || fs.NArg() != 0 {
		return usageError{errors.New("usage: dirigent backup --out FILE [--config FILE | --socket PATH]")}
	}
	start := time.Now()
	resp, err := target.do(ctx, http.MethodGet, "/backup", nil)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()

	tmp, err := os.CreateTemp(filepath.Dir(*out), ".dirigent-backup-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	n, err := io.Copy(tmp, resp.Body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: writing %s: %w", tmp.Name(), err)
	}
	if err := store.Verify(tmp.Name()); err != nil {
		return fmt.Errorf("backup: the copy is not a usable store, nothing written to %s: %w", *out, err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup: %d bytes written to %s in %s\n", n, *out, time.Since(start).Round(time.Millisecond))
	return nil
}
